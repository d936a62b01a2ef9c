"""A ``python:3.11-slim``-like base image made from this host's Python, for ``docker import`` (no registry here).

``build_rootfs()`` writes a rootfs tar with what ``deploy/docker/Dockerfile.agent`` needs from its ``BASE``: the
interpreter of the project's ``.venv`` (its base installation) as ``/usr/local/bin/python3.11`` (``python3``,
``python``) with its standard library in ``/usr/local/lib/python3.11`` (ensurepip and venv kept: the Dockerfile
runs ``python3 -m venv``; no tests, idlelib, tkinter, site-packages or ``__pycache__``), ``libpython3.11`` in
``/usr/lib`` (a default library directory: no ld.so.cache is needed), ``dash`` as ``/bin/sh`` (``RUN``), and the
``ldd`` closure of all of it plus ``libstdc++``, ``libgcc_s``, ``libz`` and glibc's ``librt``, ``libpthread``,
``libdl``, ``libutil``, which manylinux wheels expect from the system as the slim image has them (pyzmq needs
``librt``: found by the image test). Same layout rules as ``tests/support/triton_image.py`` (whose helpers it
uses): system libraries keep their paths under merged ``/usr``. The tar is cached under ``.tools/agent-image/`` by a key
over this module and the files' stats.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import sysconfig
from pathlib import Path

from tests.support.triton_image import (
    ROOTFS_DIRS,
    ROOTFS_LINKS,
    Entry,
    ImageError,
    is_elf,
    ldd,
    tree,
    write_tar,
)

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".tools" / "agent-image"
PYVER = f"python{sys.version_info.major}.{sys.version_info.minor}"
STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "lib2to3", "site-packages", "__pycache__",
               f"config-{sys.version_info.major}.{sys.version_info.minor}-x86_64-linux-gnu"}  # fmt: skip
DYNLOAD_SKIP = ("_tkinter", "_test", "xxlimited", "_xxtestfuzz", "_ctypes_test")
SYSTEM_LIBS = ("libstdc++.so.6", "libgcc_s.so.1", "libz.so.1", "librt.so.1", "libpthread.so.0", "libdl.so.2", "libutil.so.1")
SYSTEM_DIRS = ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib")
IMAGE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def _system_lib(name: str) -> Path:
    for directory in SYSTEM_DIRS:
        if (Path(directory) / name).exists():
            return Path(directory) / name
    raise ImageError(f"{name} is not installed on this host")


def rootfs_entries() -> list[Entry]:
    """Every member of the image, directories first."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    python = Path(sysconfig.get_config_var("BINDIR")) / PYVER
    libpython = Path(sysconfig.get_config_var("LIBDIR")) / str(sysconfig.get_config_var("INSTSONAME"))
    sh = shutil.which("dash")
    if sh is None:
        raise ImageError("dash is missing: the image's /bin/sh is the host's dash")
    entries = [Entry(name, mode=mode) for name, mode in ROOTFS_DIRS]
    entries += [Entry(name, link=target) for name, target in ROOTFS_LINKS]
    entries += [
        Entry(f"usr/local/bin/{PYVER}", python),
        Entry("usr/local/bin/python3", link=PYVER),
        Entry("usr/local/bin/python", link=PYVER),
        Entry("usr/bin/dash", Path(os.path.realpath(sh))),
        Entry("usr/bin/sh", link="dash"),
    ]
    if libpython.is_file():  # a shared-library build
        entries.append(Entry(f"usr/lib/{libpython.name}", libpython))
    entries += tree(
        stdlib, f"usr/local/lib/{PYVER}", STDLIB_SKIP,
        skip_file=lambda p: p.parent.name == "lib-dynload" and p.name.startswith(DYNLOAD_SKIP),
    )  # fmt: skip
    entries.append(Entry(f"usr/local/lib/{PYVER}/site-packages"))
    files = [e.source for e in entries if e.source is not None]
    have = {Path(os.path.realpath(f)) for f in files}
    elves = [f for f in files if is_elf(f)]
    libdir = str(libpython.parent)
    found: list[tuple[str, Path]] = [(name, _system_lib(name)) for name in SYSTEM_LIBS]
    for elf in [*elves, *(path for _, path in found)]:
        found += ldd(elf, {**os.environ, "LD_LIBRARY_PATH": libdir})
    for name, resolved in found:
        real = Path(os.path.realpath(resolved))
        if real in have:
            continue
        have.add(real)
        dest_dir = "usr/lib" if real.parent == libpython.parent else str(real.parent).lstrip("/")
        if not dest_dir.startswith("usr/"):
            dest_dir = f"usr/{dest_dir}"  # /lib/x86_64-linux-gnu → usr/lib/… (merged /usr)
        entries.append(Entry(f"{dest_dir}/{real.name}", real))
        soname = Path(name).name
        if soname != real.name:
            entries.append(Entry(f"{dest_dir}/{soname}", link=real.name))
    by_name: dict[str, Entry] = {}
    for entry in entries:
        by_name.setdefault(entry.name, entry)
    if "usr/lib64/ld-linux-x86-64.so.2" not in by_name:  # the ELF interpreter's path
        by_name["usr/lib64/ld-linux-x86-64.so.2"] = Entry(
            "usr/lib64/ld-linux-x86-64.so.2", link="../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
        )
    dirs = {str(p) for e in by_name.values() for p in Path(e.name).parents if str(p) != "."}
    for name in dirs - set(by_name):
        by_name[name] = Entry(name)
    return sorted(by_name.values(), key=lambda e: (e.source is not None or e.link is not None, e.name))


def build_rootfs(cache: Path = CACHE) -> Path:
    """The rootfs tar (built, or taken from the cache)."""
    entries = rootfs_entries()
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for entry in entries:
        digest.update(f"{entry.name}|{entry.source}|{entry.link}|{entry.mode}".encode())
        if entry.source is not None:
            st = entry.source.stat()
            digest.update(f"|{st.st_size}|{st.st_mtime_ns}\n".encode())
    target = cache / f"python-base-{digest.hexdigest()[:16]}.tar"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        for old in cache.glob("python-base-*.tar"):
            old.unlink(missing_ok=True)
        write_tar(entries, target)
    return target


def import_base(client: object, name: str) -> str:
    """``docker import`` the base as ``name`` into the engine of a ``docker.DockerClient``; returns the image id."""
    repository, _, tag = name.rpartition(":")
    changes = [f"ENV {k}={v}" for k, v in IMAGE_ENV.items()] + ['CMD ["python3"]']
    with open(build_rootfs(), "rb") as fh:
        client.api.import_image_from_data(fh, repository=repository, tag=tag, changes=changes)  # type: ignore[attr-defined]
    return str(client.images.get(name).id)  # type: ignore[attr-defined]
