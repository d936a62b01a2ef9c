"""A private docker engine for tests, and a tiny image that runs the host's Python inside a container.

``PrivateDockerd`` starts ``dockerd`` with safe flags (no bridge, no iptables, no IP forwarding or masquerading;
data root, exec root, pid file and socket in one temp dir; its own containerd namespace), so it never touches the
host's networking or a system docker. ``start()`` raises ``DockerdUnavailable`` with the reason when dockerd is
missing or cannot start (not root, no cgroups, …); the ``private_dockerd`` context manager turns that into a
pytest skip. ``stop()`` removes every container, stops dockerd (SIGTERM, then SIGKILL) and deletes the temp dir.

``import_rootfs_image()`` makes an image with ``docker import`` of a ~10 KB tar: empty ``/usr``, ``/etc``,
``/tmp``, ``/sbin``…, and ``bin``/``lib``/``lib64`` symlinks into ``/usr`` (Debian's merged /usr). ``host_mounts()``
lists the read-only bind mounts (``/usr``, ``/etc``, the Python installation behind the venvs, the project) that
make the host's Python, the project's ``.venv`` and ``.venv-mlserver`` run inside such a container unchanged.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROXY_VARS = ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "DOCKER_HOST")
ROOTFS_DIRS = (("usr", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("proc", 0o555), ("sys", 0o555), ("dev", 0o755),
               ("root", 0o700), ("var", 0o755), ("run", 0o755), ("sbin", 0o755))  # fmt: skip
# /sbin stays a real directory: docker mounts its init (``init=True``) at /sbin/docker-init
ROOTFS_LINKS = (("bin", "usr/bin"), ("lib", "usr/lib"), ("lib64", "usr/lib64"))


class DockerdUnavailable(Exception):
    """dockerd is missing or cannot start here; the message is the reason."""


class PrivateDockerd:
    """One private dockerd under a fresh temp dir (see the module docstring)."""

    def __init__(self, start_timeout: float = 30.0) -> None:
        self.start_timeout = start_timeout
        self.base = Path(tempfile.mkdtemp(prefix="mzd-", dir="/tmp"))  # short: unix socket paths are limited
        self.socket = self.base / "docker.sock"
        self.log_path = self.base / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._client: Any = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a subprocess that should use this engine (and no proxy)."""
        env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
        env["DOCKER_HOST"] = self.host
        env["NO_PROXY"] = "127.0.0.1,localhost"
        return env

    def client(self) -> Any:
        import docker

        if self._client is None:
            self._client = docker.DockerClient(base_url=self.host)
        return self._client

    def log_tail(self, lines: int = 8) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self) -> None:
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise DockerdUnavailable(
                "dockerd is not installed (apt-get install docker.io; .ci/setup does it)"
            )
        if os.geteuid() != 0:
            raise DockerdUnavailable("dockerd needs root here")
        (self.base / "daemon.json").write_text("{}\n")  # never read the system's /etc/docker/daemon.json
        namespace = "mz" + "".join(c for c in self.base.name if c.isalnum())
        argv = [
            dockerd, "--config-file", str(self.base / "daemon.json"),
            "--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false",
            "--data-root", str(self.base / "data"), "--exec-root", str(self.base / "exec"),
            "--pidfile", str(self.base / "dockerd.pid"), "-H", self.host,
            "--containerd-namespace", namespace, "--containerd-plugins-namespace", f"{namespace}-plugins",
            "--log-level", "warn",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={k: v for k, v in os.environ.items() if k not in PROXY_VARS}, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DockerdUnavailable(
                    f"dockerd exited with code {self.proc.returncode}: {self.log_tail()}"
                )
            if self.socket.exists():
                try:
                    self.client().ping()
                    return
                except Exception:  # noqa: BLE001 - not up yet
                    self._client = None
            time.sleep(0.2)
        raise DockerdUnavailable(
            f"dockerd did not answer within {self.start_timeout:.0f} s: {self.log_tail()}"
        )

    def stop(self) -> None:
        """Remove all containers, stop dockerd and delete its directory (idempotent)."""
        if self._client is not None:
            with contextlib.suppress(Exception):
                for container in self._client.containers.list(all=True):
                    with contextlib.suppress(Exception):
                        container.remove(force=True)
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for target in sorted(mounts_under(self.base), reverse=True):  # anything dockerd left mounted
            subprocess.run(["umount", "-l", target], capture_output=True, check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    # --- images --------------------------------------------------------------------------------------
    def import_rootfs_image(self, name: str) -> str:
        """``docker import`` a minimal rootfs as ``name`` (``repo:tag``); returns the image id."""
        repository, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "latest")
        self.client().api.import_image_from_data(rootfs_tar(), repository=repository, tag=tag)
        return str(self.client().images.get(name).id)


def mounts_under(base: Path) -> list[str]:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    prefix = f"{base}/"
    return [
        fields[1]
        for fields in (ln.split() for ln in lines)
        if len(fields) > 1 and fields[1].startswith(prefix)
    ]


def rootfs_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, mode in ROOTFS_DIRS:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        for name, target in ROOTFS_LINKS:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def python_home(python: str | Path) -> Path:
    """The installation a (venv) Python runs from (``…/bin/python3`` → ``…``)."""
    return Path(os.path.realpath(python)).parents[1]


def host_mounts(project: Path = ROOT) -> list[str]:
    """``host:container:ro`` mounts that let the project's venvs run in a ``rootfs_tar()`` container."""
    paths: list[Path] = [Path("/usr"), Path("/etc")]
    for python in (
        Path(sys.executable),
        project / ".venv" / "bin" / "python",
        project / ".venv-mlserver" / "bin" / "python",
    ):
        if python.exists():
            paths.append(python_home(python))
    paths.append(project.resolve())
    kept: list[Path] = []
    for path in paths:  # drop paths inside another mounted path
        if not any(path == k or k in path.parents for k in kept):
            kept = [k for k in kept if path not in k.parents] + [path]
    return [f"{p}:{p}:ro" for p in kept]


@contextlib.contextmanager
def private_dockerd() -> Iterator[PrivateDockerd]:
    """A started PrivateDockerd; skips the calling test (module) with the reason when it cannot start."""
    engine = PrivateDockerd()
    try:
        try:
            engine.start()
        except DockerdUnavailable as err:
            pytest.skip(f"no private docker engine: {err}")
        yield engine
    finally:
        engine.stop()
