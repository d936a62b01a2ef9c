"""A self-contained image of the setup's real Triton 2.51 (CPU, Python backend), made with ``docker import``.

``build_rootfs()`` writes a rootfs tar holding everything the server needs and nothing of the host's file system
beyond that: the ``tritonserver`` binary and the Python backend (``libtriton_python.so``, the 3.11
``triton_python_backend_stub``, ``triton_python_backend_utils.py``) from the nvidia-pytriton wheel in
``.venv-triton``, the host's ``bash`` (the Python backend starts its stub with ``/bin/bash -c "exec …"``), the ``ldd`` closure of every ELF file in the image (resolved with the library path of the
``.tools/bin/tritonserver`` shim: the wheel's libs, then the Python installation's ``LIBDIR``, then the system;
the dynamic loader and glibc included), a python3.11 interpreter with its standard library (without ``test/``,
``idlelib``, ``tkinter``, ``ensurepip``, ``lib2to3``, the base installation's ``site-packages`` and every
``__pycache__``) and numpy (+ ``numpy.libs``, without its tests) from ``.venv-triton``. Layout inside the image:

- ``/opt/tritonserver/bin/tritonserver`` and ``/opt/tritonserver/backends/python/`` (Triton's default
  ``--backend-directory``, so no flag is needed); the wheel's libraries in ``/opt/tritonserver/lib``;
- ``/usr/bin/python3.11`` (``python3``, ``python`` symlinks), ``/usr/lib/libpython3.11.so.1.0``,
  ``/usr/lib/python3.11`` (numpy in its ``site-packages``): prefix ``/usr``, found by the interpreter and by the
  stub's embedded one alike;
- system libraries at their host paths (``/usr/lib/x86_64-linux-gnu``), with ``bin``/``lib``/``lib64`` symlinks
  into ``/usr`` (merged /usr) and ``/lib64/ld-linux-x86-64.so.2`` for the ELF interpreter.

``IMAGE_ENV`` (``PATH``, ``LD_LIBRARY_PATH``) is set with ``docker import --change ENV …``, so the launcher's
default command ``tritonserver …`` runs as is. The tar is cached as ``.tools/triton-image/rootfs-<key>.tar``, the
key hashing this module's source and the path, size and mtime of every file in the image; a rerun only re-runs
``ldd`` and hashes stats. ``import_image()`` streams it into a docker engine with the Docker SDK
(``api.import_image_from_data``). ``python -m tests.support.triton_image --help`` builds (and imports) it by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parents[2]
TRITON_VENV = ROOT / ".venv-triton"
SITE = TRITON_VENV / "lib" / "python3.11" / "site-packages"
WHEEL = SITE / "pytriton" / "tritonserver"
WHEEL_LIBS = SITE / "nvidia_pytriton.libs"
CACHE = ROOT / ".tools" / "triton-image"

SERVER = "opt/tritonserver"
PYVER = "python3.11"
IMAGE_ENV = {"PATH": f"/{SERVER}/bin:/usr/bin:/bin", "LD_LIBRARY_PATH": f"/{SERVER}/lib:/usr/lib"}
ROOTFS_DIRS = (("usr", 0o755), ("usr/bin", 0o755), ("usr/lib", 0o755), ("usr/lib64", 0o755), ("etc", 0o755),
               ("tmp", 0o1777), ("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("root", 0o700),
               ("var", 0o755), ("var/tmp", 0o1777), ("run", 0o755), ("sbin", 0o755))  # fmt: skip
# /sbin stays a real directory: docker mounts its init (``init=True``) at /sbin/docker-init
ROOTFS_LINKS = (("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"))
ETC_FILES = {"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "etc/group": "root:x:0:\n"}
STDLIB_SKIP = {
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "site-packages",
    "__pycache__",
    "config-3.11-x86_64-linux-gnu",
}  # (the last: libpython3.11.a and the Makefile, for building only)
SITE_SKIP = {"tests", "__pycache__"}
DYNLOAD_SKIP = ("_tkinter", "_test", "xxlimited", "_xxtestfuzz", "_ctypes_test")
SYSTEM_PREFIXES = ("/usr/lib/", "/lib/", "/usr/lib64/", "/lib64/")
LDD_LINE = re.compile(r"^\s*(\S+)\s+=>\s+(\S+)\s+\(0x[0-9a-f]+\)$|^\s*(/\S+)\s+\(0x[0-9a-f]+\)$")


class ImageError(Exception):
    """The image cannot be built here (an input is missing, a library does not resolve); the message says why."""


@attrs.frozen
class Entry:
    """One member of the rootfs: a copied file (``source``), a symlink (``link``) or a directory."""

    name: str
    source: Path | None = None
    link: str | None = None
    mode: int = 0o755


@attrs.frozen
class BuiltImage:
    tar: Path
    key: str
    size: int
    build_seconds: float
    cached: bool


# --- inputs -------------------------------------------------------------------------------------------------
def python_paths() -> dict[str, Path]:
    """The base Python installation behind ``.venv-triton``: its ``python3.11``, ``LIBDIR`` and stdlib."""
    python = TRITON_VENV / "bin" / "python"
    if not python.exists():
        raise ImageError(f"{TRITON_VENV} is missing; run .ci/setup")
    code = (
        "import json, sys, sysconfig; print(json.dumps({'bin': sysconfig.get_config_var('BINDIR'), "
        "'libdir': sysconfig.get_config_var('LIBDIR'), 'stdlib': sysconfig.get_paths()['stdlib'], "
        "'soname': sysconfig.get_config_var('INSTSONAME'), 'version': sys.version_info[:2]}))"
    )
    found = json.loads(
        subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout
    )
    if tuple(found["version"]) != (3, 11):
        raise ImageError(f"{python} is Python {found['version']}, the wheel's stub needs 3.11")
    return {
        "python": Path(found["bin"]) / PYVER,
        "libdir": Path(found["libdir"]),
        "stdlib": Path(found["stdlib"]),
        "libpython": Path(found["libdir"]) / found["soname"],
    }


def server_files() -> list[Entry]:
    stub = WHEEL / "python_backend_stubs" / "3.11" / "triton_python_backend_stub"
    files = [
        Entry(f"{SERVER}/bin/tritonserver", WHEEL / "bin" / "tritonserver"),
        Entry(
            f"{SERVER}/backends/python/libtriton_python.so",
            WHEEL / "backends" / "python" / "libtriton_python.so",
        ),
        Entry(f"{SERVER}/backends/python/triton_python_backend_stub", stub),
        Entry(
            f"{SERVER}/backends/python/triton_python_backend_utils.py",
            WHEEL / "backends" / "python" / "triton_python_backend_utils.py",
            mode=0o644,
        ),
    ]
    bash = shutil.which("bash")  # the Python backend starts its stub with /bin/bash -c "exec <stub> …"
    if bash is None:
        raise ImageError("bash is missing: Triton's Python backend starts its stub through /bin/bash")
    files.append(Entry("usr/bin/bash", Path(os.path.realpath(bash))))
    for entry in files:
        if entry.source is None or not entry.source.exists():
            raise ImageError(
                f"{entry.source} is missing; run .ci/setup (Triton from the nvidia-pytriton wheel)"
            )
    return files


def tree(source: Path, dest: str, skip: set[str], skip_file: Any = None) -> Iterator[Entry]:
    """Every file and symlink under ``source`` as entries under ``dest``, pruning directories named in ``skip``."""
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(
            d for d in dirnames if d not in skip and not os.path.islink(os.path.join(dirpath, d))
        )
        rel = Path(dirpath).relative_to(source)
        yield Entry(str(Path(dest) / rel) if str(rel) != "." else dest)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.endswith((".pyc", ".pyo")) or (skip_file is not None and skip_file(path)):
                continue
            if path.is_symlink():
                yield Entry(str(Path(dest) / rel / name), link=os.readlink(path))
            else:
                yield Entry(str(Path(dest) / rel / name), path, mode=path.stat().st_mode & 0o777)


def python_files(paths: dict[str, Path]) -> list[Entry]:
    lib = f"usr/lib/{PYVER}"
    entries = [
        Entry(f"usr/bin/{PYVER}", paths["python"]),
        Entry("usr/bin/python3", link=PYVER),
        Entry("usr/bin/python", link=PYVER),
    ]
    entries += tree(
        paths["stdlib"], lib, STDLIB_SKIP,
        skip_file=lambda p: p.parent.name == "lib-dynload" and p.name.startswith(DYNLOAD_SKIP),
    )  # fmt: skip
    entries.append(Entry(f"{lib}/site-packages"))
    for package in ("numpy", "numpy.libs"):
        if not (SITE / package).is_dir():
            raise ImageError(f"{SITE / package} is missing; run .ci/setup")
        entries += tree(SITE / package, f"{lib}/site-packages/{package}", SITE_SKIP)
    return entries


# --- the ldd closure ------------------------------------------------------------------------------------------
def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def ldd(path: Path, env: dict[str, str]) -> list[tuple[str, Path]]:
    """``(name, resolved path)`` of each library ``path`` needs (the ELF interpreter's name is its path)."""
    proc = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env, check=False)
    if "not a dynamic executable" in proc.stdout + proc.stderr or "statically linked" in proc.stdout:
        return []
    if proc.returncode != 0:
        raise ImageError(f"ldd {path} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    found: list[tuple[str, Path]] = []
    for line in proc.stdout.splitlines():
        if "=> not found" in line:
            raise ImageError(
                f"{path} needs {line.split()[0]}, which does not resolve (LD_LIBRARY_PATH={env.get('LD_LIBRARY_PATH')})"
            )
        match = LDD_LINE.match(line)
        if match and match.group(2):
            found.append((match.group(1), Path(match.group(2))))
        elif match and match.group(3):
            found.append((match.group(3), Path(match.group(3))))
    return found


def library_entries(elves: Iterable[Path], paths: dict[str, Path], have: set[Path]) -> list[Entry]:
    """Entries for the ldd closure of ``elves`` not already in the image (``have``: real paths of its files)."""
    shim_path = f"{WHEEL_LIBS}:{paths['libdir']}"
    entries: dict[str, Entry] = {}
    for elf in elves:  # (its own directory too: bundled libraries find their siblings through $ORIGIN rpaths)
        for name, resolved in ldd(elf, {**os.environ, "LD_LIBRARY_PATH": f"{shim_path}:{elf.parent}"}):
            real = Path(os.path.realpath(resolved))
            if real in have:
                continue
            if str(real).startswith(SYSTEM_PREFIXES):
                dest_dir = str(real.parent).lstrip("/")  # a system library keeps its path (merged /usr)
            elif real.parent == paths["libdir"]:
                dest_dir = "usr/lib"
            else:
                dest_dir = f"{SERVER}/lib"
            entries.setdefault(f"{dest_dir}/{real.name}", Entry(f"{dest_dir}/{real.name}", real))
            if name.startswith("/"):  # the ELF interpreter, e.g. /lib64/ld-linux-x86-64.so.2
                link = name.lstrip("/")
                link = re.sub(r"^(lib|lib64|bin)/", r"usr/\1/", link)
                if link != f"{dest_dir}/{real.name}":
                    target = os.path.relpath(f"/{dest_dir}/{real.name}", f"/{Path(link).parent}")
                    entries.setdefault(link, Entry(link, link=target))
            elif Path(name).name != real.name:  # the soname → the real file, next to it
                entries.setdefault(
                    f"{dest_dir}/{Path(name).name}", Entry(f"{dest_dir}/{Path(name).name}", link=real.name)
                )
    return list(entries.values())


def rootfs_entries() -> list[Entry]:
    """Every member of the image, directories first (see the module docstring)."""
    paths = python_paths()
    entries = [Entry(name, mode=mode) for name, mode in ROOTFS_DIRS]
    entries += [Entry(name, link=target) for name, target in ROOTFS_LINKS]
    entries += server_files() + python_files(paths)
    files = [e for e in entries if e.source is not None]
    have = {Path(os.path.realpath(e.source)) for e in files if e.source is not None}
    elves = [e.source for e in files if e.source is not None and is_elf(e.source)]
    entries += library_entries(elves, paths, have)  # ldd lists the whole closure, not only DT_NEEDED
    by_name: dict[str, Entry] = {}
    for entry in entries:
        by_name.setdefault(entry.name, entry)
    dirs = {str(p) for e in by_name.values() for p in Path(e.name).parents if str(p) != "."}
    for name in dirs - set(by_name):
        by_name[name] = Entry(name)
    return sorted(by_name.values(), key=lambda e: (e.source is not None or e.link is not None, e.name))


def cache_key(entries: list[Entry]) -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for entry in entries:
        stat = entry.source.stat() if entry.source is not None else None
        digest.update(f"{entry.name}|{entry.source}|{entry.link}|{entry.mode}".encode())
        if stat is not None:
            digest.update(f"|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


# --- the tar --------------------------------------------------------------------------------------------------
def write_tar(entries: list[Entry], target: Path) -> None:
    partial = target.with_suffix(".partial")
    with tarfile.open(partial, "w", format=tarfile.GNU_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mtime, info.uname, info.gname = 0, "root", "root"
            if entry.link is not None:
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.link, 0o777
                tar.addfile(info)
            elif entry.source is None:
                info.type, info.mode = tarfile.DIRTYPE, entry.mode
                tar.addfile(info)
            else:
                info.size, info.mode = entry.source.stat().st_size, entry.mode
                with open(entry.source, "rb") as fh:
                    tar.addfile(info, fh)
        for name, text in ETC_FILES.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    partial.replace(target)


def build_rootfs(cache: Path = CACHE) -> BuiltImage:
    """The rootfs tar of the image, built (or taken from the cache) — see the module docstring."""
    started = time.monotonic()
    entries = rootfs_entries()
    key = cache_key(entries)
    target = cache / f"rootfs-{key}.tar"
    cached = target.exists()
    if not cached:
        cache.mkdir(parents=True, exist_ok=True)
        for old in cache.glob("rootfs-*.tar"):  # one image at a time: the old ones are stale
            old.unlink(missing_ok=True)
        write_tar(entries, target)
    return BuiltImage(target, key, target.stat().st_size, time.monotonic() - started, cached)


def image_changes() -> list[str]:
    return [f"ENV {name}={value}" for name, value in IMAGE_ENV.items()] + ["WORKDIR /"]


def import_image(client: Any, name: str, built: BuiltImage) -> str:
    """``docker import`` the tar into the engine of ``client`` (a ``docker.DockerClient``) as ``name``; the id."""
    repository, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
    changes = [*image_changes(), f"LABEL modelyzer.triton-image={built.key}"]
    with open(built.tar, "rb") as fh:
        client.api.import_image_from_data(fh, repository=repository, tag=tag, changes=changes)
    return str(client.images.get(name).id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.triton_image",
        description="Build the self-contained rootfs tar of the setup's Triton 2.51 (CPU, Python backend) and "
        "optionally import it into a docker engine (DOCKER_HOST) with the ENV it needs.",
    )
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"where the tar is kept (default: {CACHE})")
    parser.add_argument(
        "--import-as", metavar="NAME", help="import it as NAME (repo:tag) into $DOCKER_HOST's engine"
    )
    args = parser.parse_args(argv)
    try:
        built = build_rootfs(args.cache)
    except ImageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"{built.tar} ({built.size / 1e6:.0f} MB, {'cached' if built.cached else 'built'} in {built.build_seconds:.1f} s)"
    )
    if args.import_as:
        import docker

        started = time.monotonic()
        image_id = import_image(docker.from_env(), args.import_as, built)
        print(
            f"imported as {args.import_as} ({image_id}) in {time.monotonic() - started:.1f} s; env: "
            + " ".join(f"{k}={v}" for k, v in IMAGE_ENV.items())
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
