"""Docker plumbing of the ``docker`` launcher (no launcher policy): the client, ``containers.run`` keyword merging,
ownership labels and orphan cleanup, image presence, free ports, and a container's memory for the cpu collector.

- ``docker_client()``: ``$MODELYZER_DOCKER_HOST`` if set (a base URL such as ``unix:///path/docker.sock``), else the
  docker SDK's own environment (``DOCKER_HOST``, ``DOCKER_TLS_VERIFY``, ``DOCKER_CERT_PATH``; default socket).
- ``merge_run_kwargs(own, user)``: the user's ``triton_docker_args`` merged with the launcher's own keywords so
  that nothing collides (Model Analyzer splats both into one call and fails on a repeated keyword):
  ``labels``, ``volumes`` and ``environment`` are merged (the user's entry wins for the same label key, container
  path or variable — except the ``modelyzer.*`` ownership labels, which always stay); ``detach`` is always true
  (the launcher needs the container handle); ``network`` replaces the launcher's ``network_mode``; every other
  key (``image``, ``command``, ``shm_size``, ``init``, ``name``, …) replaces the launcher's value.
- Ownership: every container carries ``modelyzer.run=<run id>``, ``modelyzer.owner=<pid>@<host>`` and
  ``modelyzer.owner-started=<process start time>``. ``remove_orphans()`` removes containers of this host whose
  owner process is gone (or whose PID now belongs to a younger process); other hosts' containers are left alone.
- ``ensure_image()``: a locally present image is used as is and never pulled; an absent one gets one pull
  attempt, and its failure is a one-line LaunchError naming ``triton_docker_image``.
- ``container_memory_bytes()``: a container's memory use as ``docker stats`` shows it (usage minus inactive page
  cache), read through the stats API (one shot).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import psutil

from modelyzer.kernel.errors import LaunchError

ENV_DOCKER_HOST = "MODELYZER_DOCKER_HOST"
LABEL_RUN = "modelyzer.run"
LABEL_OWNER = "modelyzer.owner"
LABEL_OWNER_STARTED = "modelyzer.owner-started"
OWN_LABELS = (LABEL_RUN, LABEL_OWNER, LABEL_OWNER_STARTED)

_clients: dict[str, Any] = {}


def docker_client() -> Any:
    """A docker SDK client for ``$MODELYZER_DOCKER_HOST`` or the SDK's environment; LaunchError if unreachable."""
    import docker

    base_url = os.environ.get(ENV_DOCKER_HOST, "")
    where = base_url or os.environ.get("DOCKER_HOST", "") or "the default docker socket"
    try:
        client = docker.DockerClient(base_url=base_url) if base_url else docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - DockerException, requests errors, bad URLs
        hint = f"start dockerd, or set ${ENV_DOCKER_HOST} or DOCKER_HOST to a running docker engine"
        raise LaunchError(f"cannot reach the docker engine at {where}: {unreachable_reason(exc)}; {hint}") from exc
    return client


#: what the SDK's wrapped errors mean, in words (the first one found in the message wins)
UNREACHABLE = (("FileNotFoundError", "no socket there (is dockerd running?)"),
               ("ConnectionRefused", "connection refused (nothing listens there)"),
               ("Connection refused", "connection refused (nothing listens there)"),
               ("PermissionError", "permission denied on the socket (run as root or join the docker group)"),
               ("Name or service not known", "unknown host"), ("timed out", "timed out"))


def unreachable_reason(exc: BaseException) -> str:
    """Why the docker engine could not be reached, in words, instead of requests' nested tuple reprs."""
    text = str(exc)
    for marker, words in UNREACHABLE:
        if marker in text:
            return words
    return one_line(exc)[:200]


def shared_client() -> Any:
    """One cached client per docker host (for frequent calls such as memory sampling)."""
    key = os.environ.get(ENV_DOCKER_HOST) or os.environ.get("DOCKER_HOST") or ""
    if key not in _clients:
        _clients[key] = docker_client()
    return _clients[key]


def one_line(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    text = " ".join(str(explanation or exc).split())
    return text or exc.__class__.__name__


def server_host(client: Any) -> str:
    """The address where a host-networked container answers: the engine's host for tcp:// engines, else loopback."""
    url = str(getattr(getattr(client, "api", None), "base_url", "") or "")
    parsed = urlparse(url)
    if parsed.scheme in ("tcp", "http", "https") and parsed.hostname not in (None, "localhost", "127.0.0.1"):
        return str(parsed.hostname)
    return "127.0.0.1"


# --- ownership -------------------------------------------------------------------------------------------
def owner_labels(run_id: str, pid: int | None = None) -> dict[str, str]:
    pid = os.getpid() if pid is None else pid
    return {
        LABEL_RUN: run_id,
        LABEL_OWNER: f"{pid}@{socket.gethostname()}",
        LABEL_OWNER_STARTED: f"{psutil.Process(pid).create_time():.2f}",
    }


def owner_alive(labels: Mapping[str, str]) -> bool | None:
    """True/False for a container owned by a process of this host; None when the owner is elsewhere or unknown."""
    pid_text, _, host = str(labels.get(LABEL_OWNER, "")).partition("@")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    try:
        proc = psutil.Process(int(pid_text))
        started = float(labels.get(LABEL_OWNER_STARTED, "0") or 0)
        return not started or abs(proc.create_time() - started) < 1.0
    except (psutil.NoSuchProcess, ValueError):
        return False
    except psutil.Error:
        return True  # exists but unreadable: not ours to judge


def remove_orphans(client: Any, log: logging.Logger) -> list[str]:
    """Remove containers left by a modelyzer process of this host that no longer runs; return their names."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": LABEL_OWNER}):
        labels = container.labels or {}
        if owner_alive(labels) is not False:
            continue
        try:
            container.remove(force=True)
        except Exception as exc:  # noqa: BLE001 - already gone, or being removed by someone else
            log.debug("could not remove orphan container %s: %s", container.name, one_line(exc))
            continue
        removed.append(str(container.name))
        log.warning(
            "removed orphan server container %s (run %s of %s, which is no longer running)",
            container.name,
            labels.get(LABEL_RUN, "?"),
            labels.get(LABEL_OWNER, "?"),
        )
    return removed


# --- images ----------------------------------------------------------------------------------------------
def ensure_image(client: Any, image: str, log: logging.Logger) -> None:
    """Use a present image as is; pull an absent one once; LaunchError (one line) if that fails."""
    import docker.errors

    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    except Exception as exc:  # noqa: BLE001
        raise LaunchError(f"cannot inspect triton_docker_image {image!r}: {one_line(exc)}") from exc
    log.info("docker image %s is not present locally; pulling it once", image)
    try:
        client.images.pull(image)
    except Exception as exc:  # noqa: BLE001 - registry unreachable, unknown image, auth
        raise LaunchError(
            f"triton_docker_image {image!r} is not present locally and could not be pulled: {one_line(exc)}; "
            "build, import or pull it on the docker host first, or fix triton_docker_image"
        ) from exc


# --- containers.run keywords -------------------------------------------------------------------------------
def parse_mount(spec: str, key: str = "triton_docker_mounts") -> tuple[str, str, str]:
    parts = str(spec).split(":")
    if len(parts) != 3 or not all(parts):
        raise LaunchError(f"{key}: each mount must be host:container:mode, got {spec!r}")
    return parts[0], parts[1], parts[2]


def volume_specs(value: Any) -> list[str]:
    """docker-py ``volumes`` (dict host → {bind, mode}, list of ``host:container[:mode]``, or one string) as a list."""
    if not value:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        out = []
        for host, spec in value.items():
            if isinstance(spec, Mapping):
                out.append(f"{host}:{spec.get('bind', host)}:{spec.get('mode', 'rw')}")
            else:
                out.append(f"{host}:{spec}")
        return out
    return [str(v) for v in value]


def _container_path(spec: str) -> str:
    parts = spec.split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def merge_volumes(own: list[str], user: Any) -> list[str]:
    extra = volume_specs(user)
    taken = {_container_path(v) for v in extra}
    return [v for v in own if _container_path(v) not in taken] + extra


def environment_dict(value: Any) -> dict[str, str]:
    """docker-py ``environment`` (dict, or list of ``K=V``) as a dict."""
    if not value:
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    out = {}
    for item in [value] if isinstance(value, str) else value:
        name, _, val = str(item).partition("=")
        out[name] = val
    return out


def merge_run_kwargs(
    own: Mapping[str, Any], user: Mapping[str, Any] | None, log: logging.Logger
) -> dict[str, Any]:
    """The launcher's ``containers.run`` keywords merged with the user's ``triton_docker_args`` (module docstring)."""
    merged = dict(own)
    for key, value in (user or {}).items():
        if key == "labels":
            labels = {
                **dict(merged.get("labels") or {}),
                **{str(k): str(v) for k, v in dict(value or {}).items()},
            }
            labels.update({k: v for k, v in dict(own.get("labels") or {}).items() if k in OWN_LABELS})
            merged["labels"] = labels
        elif key == "volumes":
            merged["volumes"] = merge_volumes(list(merged.get("volumes") or []), value)
        elif key == "environment":
            merged["environment"] = {**dict(merged.get("environment") or {}), **environment_dict(value)}
        elif key == "detach":
            if not value:
                log.warning("triton_docker_args.detach is ignored: the server container always runs detached")
        elif key == "network":
            merged.pop("network_mode", None)
            merged["network"] = value
        else:
            merged[key] = value
    merged["detach"] = True
    return merged


def is_host_network(kwargs: Mapping[str, Any]) -> bool:
    return not kwargs.get("network") and str(kwargs.get("network_mode", "host")) == "host"


# --- memory ------------------------------------------------------------------------------------------------
def container_memory_bytes(container_id: str) -> int:
    """Memory used by the container (``docker stats``: usage minus inactive file cache); raises if it is gone."""
    stats = shared_client().api.stats(container_id, stream=False, one_shot=True)
    memory = stats.get("memory_stats") or {}
    if "usage" not in memory:
        raise LookupError(f"container {container_id[:12]} reports no memory usage (not running?)")
    detail = memory.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0)) or 0
    usage = int(memory["usage"])
    return usage - int(cache) if cache < usage else usage
