"""The ``docker`` launcher: runs the server in a container of ``triton_docker_image`` and loads each variant into it.

The command line, ports, settings, restarts and loads are ``TritonServerLauncher``'s (``triton_server``; the start,
readiness and restart policy are ``ManagedServerLauncher``'s, ``managed``), as for the ``local`` launcher. This
module owns the container:

- The container runs ``triton_server_path`` (default ``tritonserver``, resolved inside the image) with the same
  flags as the ``local`` launcher: ``--model-repository=<model_repository>``, ``--model-control-mode=explicit``,
  the three ports, ``--metrics-interval-ms``, then the user's ``triton_server_flags``. Variants are loaded under
  the model's own name with Triton's load-with-config (``TritonRepository``); the container is replaced only when
  a RunConfig's server flags, environment or docker arguments differ from the running one's. ``server_starts`` /
  ``model_loads`` count that.
- Mounts: the model repository read-only and the output model repository read-write, each at its own host path,
  plus ``triton_docker_mounts`` (``host:container:mode``). ``triton_docker_shm_size`` and ``triton_docker_labels``
  apply; ``triton_docker_args`` (per model, default the global ones) are merged with the launcher's own
  ``containers.run`` keywords without colliding (``docker_support.merge_run_kwargs``: labels, volumes and
  environment merge with the user's entry winning; any other key replaces the launcher's value).
- Environment: ``CUDA_VISIBLE_DEVICES`` = the selected GPUs' UUIDs (``""`` without GPUs) plus
  ``triton_server_environment`` (passed literally: no ``$VAR`` expansion, there is no shell). GPUs are passed as
  a docker ``DeviceRequest`` for those UUIDs. ``init=True`` (docker's tini) so the server gets SIGTERM on stop.
- Network: ``network_mode="host"`` by default, on the ports of ``triton_http_endpoint`` / ``triton_grpc_endpoint``
  / ``triton_metrics_url`` when the user set them, else free ports; with another ``network_mode`` (or a
  ``network``) in ``triton_docker_args`` the same host ports are published (mapped to the same container ports).
- Image: a locally present image is used as is, never pulled; an absent one gets one pull attempt, and a failure
  is a one-line LaunchError naming ``triton_docker_image``.
- Ownership: each container carries ``modelyzer.run`` / ``modelyzer.owner`` labels; the first start removes
  containers whose owner process (on this host) is gone, so a SIGKILLed profile leaves nothing behind once the
  next one starts. ``stop()`` (also on Ctrl-C / SIGTERM, through the engine's ``finally``) stops and removes every
  container of this run, after appending its log to ``triton_output_path`` (default
  ``<export_path>/tritonserver.log``).
- Readiness is polled for ``client_max_retries`` seconds; a container that exits or never gets ready is a
  LaunchError carrying the last lines of its log. ``Endpoints.container_id`` lets the ``cpu`` collector read the
  container's memory.
- The docker engine is ``$MODELYZER_DOCKER_HOST`` or the docker SDK's environment (``DOCKER_HOST``).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import attrs

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import LaunchError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import Endpoints, RunConfig
from modelyzer.plugins.launchers import docker_support as ds
from modelyzer.plugins.launchers.managed import ServerSettings
from modelyzer.plugins.launchers.triton_server import LOG_TAIL_LINES, TritonServerLauncher, gpu_uuids

STOP_GRACE_S = 5


class DockerLauncher(TritonServerLauncher):
    """Starts and owns a server container; see the module docstring."""

    server_label = "tritonserver container"
    start_failure = "cannot start the server container"
    mode_label = "docker"

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        super().__init__(config, context)
        self.run_id = uuid.uuid4().hex[:12]
        for mount in config.triton_docker_mounts:
            ds.parse_mount(mount)
        self.docker: Any = None
        self.container: Any = None

    # --- settings ---------------------------------------------------------------------------------------
    def docker_args(self, model: str) -> dict[str, Any]:
        """``triton_docker_args`` of ``model`` (per-model settings inherit the global ones)."""
        for spec in self.config.models:
            if spec.name == model:
                return dict(spec.triton_docker_args)
        return dict(self.config.triton_docker_args)

    def extra_settings(self, model: str) -> dict[str, Any]:
        return {"docker": self.docker_args(model)}

    def binary(self) -> str:
        return self.config.triton_server_path  # resolved inside the image

    def run_kwargs(
        self,
        flags: dict[str, Any],
        env: dict[str, str],
        args: dict[str, Any],
        ports: dict[str, int],
        argv: list[str] | None = None,
    ) -> dict[str, Any]:
        """The ``containers.run`` keywords of one server container (see the module docstring)."""
        config = self.config
        repo = Path(config.model_repository or ".").resolve()  # (no repository: command() says so)
        output = self.context.output_model_repository.resolve()
        volumes = [f"{repo}:{repo}:ro", f"{output}:{output}:rw"]
        volumes = ds.merge_volumes(volumes, list(config.triton_docker_mounts))
        gpus = gpu_uuids(self.context)
        labels = {str(k): str(v) for k, v in config.triton_docker_labels.items()}
        labels.update(ds.owner_labels(self.run_id))
        own: dict[str, Any] = {
            "image": config.triton_docker_image,
            "command": argv if argv is not None else self.command(flags, ports),
            "name": f"modelyzer-{self.run_id}-{self.server_starts + 1}",
            "init": True,
            "labels": labels,
            "volumes": volumes,
            "environment": {"CUDA_VISIBLE_DEVICES": ",".join(gpus), **env},
            "network_mode": "host",
            "detach": True,
        }
        if config.triton_docker_shm_size:
            own["shm_size"] = str(config.triton_docker_shm_size)
        if gpus:
            import docker.types

            own["device_requests"] = [docker.types.DeviceRequest(device_ids=gpus, capabilities=[["gpu"]])]
        merged = ds.merge_run_kwargs(own, args, self.log)
        if not ds.is_host_network(merged):
            merged["ports"] = {f"{port}/tcp": port for port in ports.values()}
        return merged

    # --- the container ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        if self.container is None:
            return False
        try:
            self.container.reload()
        except Exception:  # noqa: BLE001 - removed behind our back
            return False
        return str(self.container.status) == "running"

    def connect(self) -> None:
        """The docker client; on first use, remove orphan containers of dead modelyzer processes."""
        if self.docker is None:
            self.docker = ds.docker_client()
            self.host = ds.server_host(self.docker)
            ds.remove_orphans(self.docker, self.log)

    def prepare(self) -> None:
        self.connect()

    def check(self) -> None:
        """The docker engine answers (nothing is started, pulled or removed)."""
        ds.docker_client()

    def spawn(self, argv: list[str], settings: ServerSettings) -> None:
        kwargs = self.run_kwargs(
            settings.flags, settings.env, dict(settings.extra["docker"]), self.ports, argv
        )
        ds.ensure_image(self.docker, str(kwargs["image"]), self.log)
        try:
            self.container = self.docker.containers.run(**kwargs)
        except Exception as exc:  # noqa: BLE001 - APIError with docker's reason
            raise LaunchError(
                f"docker could not start {kwargs['image']} ({' '.join(map(str, kwargs['command']))}): "
                f"{ds.one_line(exc)}"
            ) from exc
        self.log.info(
            "docker: started container %s of %s (%s), log %s",
            self.container.name, kwargs["image"], self.repository.http, self.log_path,
        )  # fmt: skip

    def kill(self) -> None:
        self.container = None
        if self.docker is None:
            return
        try:
            ours = self.docker.containers.list(all=True, filters={"label": f"{ds.LABEL_RUN}={self.run_id}"})
        except Exception as exc:  # noqa: BLE001 - stop must not raise; orphans go at the next start
            self.log.warning("docker: cannot list this run's containers: %s", ds.one_line(exc))
            return
        for container in ours:
            self._remove(container)

    def _remove(self, container: Any) -> None:
        """Append the container's log to ``log_path``, then stop and remove it (never raises)."""
        try:
            text = container.logs().decode(errors="replace")
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a") as fh:
                fh.write(
                    f"\n===== modelyzer: container {container.name} ({container.short_id}) =====\n{text}"
                )
        except Exception as exc:  # noqa: BLE001
            self.log.debug("docker: cannot save the log of %s: %s", container.name, ds.one_line(exc))
        try:
            container.stop(timeout=STOP_GRACE_S)
        except Exception:  # noqa: BLE001 - already stopped or gone
            pass
        try:
            container.remove(force=True)
        except Exception as exc:  # noqa: BLE001
            self.log.debug("docker: cannot remove %s: %s", container.name, ds.one_line(exc))

    def endpoints(self, model: str) -> Endpoints:
        container_id = str(self.container.id) if self.container is not None else None
        return attrs.evolve(super().endpoints(model), container_id=container_id)

    def note_restart(self, run_config: RunConfig, settings: ServerSettings) -> None:
        if self.container is not None and self.running:
            self.log.info(
                "docker: new container for new server flags/environment (%s)", run_config.describe()
            )
        elif self.container is not None:
            self.log.warning("docker: the server container exited; starting a new one:\n%s", self.log_tail())

    # --- the log --------------------------------------------------------------------------------------------
    def log_tail(self, lines: int = LOG_TAIL_LINES, since: int | None = None) -> str:
        if self.container is None:
            return "(no container)"
        try:
            raw = self.container.logs(tail=lines, **({"since": since} if since else {}))
        except Exception as exc:  # noqa: BLE001
            return f"(no log: {ds.one_line(exc)})"
        return raw.decode(errors="replace").rstrip() or "(empty log)"

    def exited_message(self) -> str:
        status = getattr(self.container, "status", "gone")
        code = (getattr(self.container, "attrs", {}) or {}).get("State", {}).get("ExitCode")
        return (
            f"the server container {status} (exit code {code}) while starting; last lines of its log:\n"
            f"{self.log_tail()}"
        )

    def timeout_message(self, seconds: float) -> str:
        name = self.container.name if self.container is not None else "(gone)"
        return (
            f"the server in container {name} did not become ready within {seconds} s "
            f"(client_max_retries={seconds}, polling {self.repository.http}); last lines of its log:\n"
            f"{self.log_tail()}"
        )

    def log_mark(self) -> int:
        return int(time.time()) - 1

    def log_errors_since(self, mark: Any) -> str:
        logged = [
            ln for ln in self.log_tail(200, int(mark)).splitlines() if "error" in ln.lower() or ln[:1] == "E"
        ]
        return " | ".join(logged[-5:])


@hookimpl
def register_launchers(register: Any) -> None:
    register("docker", DockerLauncher)
