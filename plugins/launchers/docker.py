"""The ``docker`` launcher: runs the server in a container of ``triton_docker_image`` and loads each variant into it.

- The container runs ``triton_server_path`` (default ``tritonserver``, resolved inside the image) with the same
  flags as the ``local`` launcher (``triton_server_flags.server_argv``): ``--model-repository=<model_repository>``,
  ``--model-control-mode=explicit``, the three ports, ``--metrics-interval-ms``, then the user's
  ``triton_server_flags``. Variants are loaded under the model's own name with Triton's load-with-config, through
  the ``remote`` launcher's repository client; the container is replaced only when a RunConfig's server flags,
  environment or docker arguments differ from the running one's. ``server_starts`` / ``model_loads`` count that.
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

from modelyzer.kernel.errors import ConfigError, LaunchError, ModelLoadError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, RunConfig, canonical_json
from modelyzer.plugins.launchers import docker_support as ds
from modelyzer.plugins.launchers.local import DEFAULT_ENDPOINTS, ENDPOINT_KEYS, gpu_uuids
from modelyzer.plugins.launchers.local_server import free_ports, port_of, port_problem
from modelyzer.plugins.launchers.remote import RemoteLauncher
from modelyzer.plugins.launchers.triton_server_flags import check_flags, render_value, server_argv, warn_to

DEFAULT_SERVER = "tritonserver"
DEFAULT_IMAGE = "nvcr.io/nvidia/tritonserver:26.09-py3"
LOG_NAME = "tritonserver.log"
STOP_GRACE_S = 5
LOAD_TIMEOUT_S = 600.0  # loading a large model can take minutes: the load request must not time out first
POLL_S = 0.2
LOG_TAIL_LINES = 20
PORT_NAMES = ("http", "grpc", "metrics")


def _cfg(config: Any, name: str, default: Any = None) -> Any:
    value = getattr(config, name, default)
    return default if value is None else value


class DockerLauncher(RemoteLauncher):
    """Starts and owns a server container; see the module docstring."""

    server_label = "tritonserver container"

    def __init__(self, config: Any, context: RunContext) -> None:
        super().__init__(config, context)
        self.client_protocol = self.protocol  # what the load generator uses; our own client talks HTTP
        self.log = context.log
        self.run_id = uuid.uuid4().hex[:12]
        check_flags(_cfg(config, "triton_server_flags", {}))
        for spec in _cfg(config, "models", ()) or ():
            check_flags(spec.triton_server_flags, f"profile_models.{spec.name}.triton_server_flags")
        for mount in _cfg(config, "triton_docker_mounts", []) or []:
            ds.parse_mount(mount)
        output = _cfg(config, "triton_output_path", None)
        self.log_path = Path(output).resolve() if output else Path(context.export_path) / LOG_NAME
        self.docker: Any = None
        self.container: Any = None
        self.host = "127.0.0.1"
        self.ports: dict[str, int] = {}
        self._server_key: str | None = None

    # --- Launcher API ---------------------------------------------------------------------------------
    def start(self) -> None:
        if self.running:
            return
        specs = _cfg(self.config, "models", ()) or ()
        if specs:
            flags, env = dict(specs[0].triton_server_flags), dict(specs[0].triton_server_environment)
            self._start_container(flags, env, self.docker_args(specs[0].name))
        else:
            env = dict(_cfg(self.config, "triton_server_environment", {}))
            self._start_container(
                dict(_cfg(self.config, "triton_server_flags", {})), env, self.docker_args("")
            )

    def ensure(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        model = variant.model or run_config.model
        flags = check_flags(run_config.server_flags)
        env = {str(k): str(v) for k, v in (run_config.server_env or {}).items()}
        args = self.docker_args(run_config.model)
        if not self.running or self._server_key != self.server_key(flags, env, args):
            if self.container is not None and self.running:
                self.log.info(
                    "docker: new container for new server flags/environment (%s)", run_config.describe()
                )
            elif self.container is not None:
                self.log.warning(
                    "docker: the server container exited; starting a new one:\n%s", self.log_tail()
                )
            self._start_container(flags, env, args)
        self._unload_others(model)
        if self._loaded.get(model) != variant.config_hash:
            self._load(variant)
        return self.endpoints(model)

    def stop(self) -> None:
        self.container = None
        self._server_key = None
        super().stop()  # closes the client, forgets loaded models
        if self.docker is None:
            return
        try:
            ours = self.docker.containers.list(all=True, filters={"label": f"{ds.LABEL_RUN}={self.run_id}"})
        except Exception as exc:  # noqa: BLE001 - stop must not raise; orphans go at the next start
            self.log.warning("docker: cannot list this run's containers: %s", ds.one_line(exc))
            return
        for container in ours:
            self._remove(container)

    def writes_full_variant_dirs(self) -> bool:
        return True

    # --- settings ---------------------------------------------------------------------------------------
    def docker_args(self, model: str) -> dict[str, Any]:
        """``triton_docker_args`` of ``model`` (per-model settings inherit the global ones)."""
        for spec in _cfg(self.config, "models", ()) or ():
            if spec.name == model:
                return dict(spec.triton_docker_args)
        return dict(_cfg(self.config, "triton_docker_args", {}) or {})

    @staticmethod
    def server_key(flags: dict[str, Any], env: dict[str, str], args: dict[str, Any]) -> str:
        return canonical_json({"flags": flags, "env": env, "docker": args})

    def _user_set(self, key: str) -> bool:
        user_set = getattr(self.config, "user_set", None)
        if user_set is not None:
            return key in user_set
        return str(_cfg(self.config, key, DEFAULT_ENDPOINTS[key])) != DEFAULT_ENDPOINTS[key]

    def choose_ports(self) -> dict[str, int]:
        """Configured ports for endpoints the user set, free ones otherwise; LaunchError for a port in use."""
        chosen = {
            name: port_of(key, _cfg(self.config, key, ""))
            for name, key in zip(PORT_NAMES, ENDPOINT_KEYS, strict=True)
            if self._user_set(key)
        }
        spare = [p for p in free_ports(6) if p not in chosen.values()]
        for name in PORT_NAMES:
            chosen.setdefault(name, spare.pop(0))
        for name, key in zip(PORT_NAMES, ENDPOINT_KEYS, strict=True):
            problem = port_problem(chosen[name], key if self._user_set(key) else f"a free port for {key}")
            if problem:
                raise LaunchError(f"cannot start the server container: {problem}")
        return chosen

    def command(self, flags: dict[str, Any], ports: dict[str, int]) -> list[str]:
        repo = _cfg(self.config, "model_repository", None)
        if repo is None:
            raise ConfigError(
                "model_repository: required in docker launch mode (the server loads models from it)"
            )
        own: dict[str, Any] = {
            "model-repository": str(Path(repo).resolve()),
            "model-control-mode": "explicit",
            "http-port": ports["http"],
            "grpc-port": ports["grpc"],
            "metrics-port": ports["metrics"],
            "metrics-interval-ms": int(float(_cfg(self.config, "monitoring_interval", 1.0)) * 1000),
        }
        server = str(_cfg(self.config, "triton_server_path", DEFAULT_SERVER))
        return server_argv(server, own, flags, warn_to(self.log))

    def run_kwargs(
        self, flags: dict[str, Any], env: dict[str, str], args: dict[str, Any], ports: dict[str, int]
    ) -> dict[str, Any]:
        """The ``containers.run`` keywords of one server container (see the module docstring)."""
        repo = Path(_cfg(self.config, "model_repository", ".")).resolve()
        output = Path(self.context.output_model_repository).resolve()
        volumes = [f"{repo}:{repo}:ro", f"{output}:{output}:rw"]
        volumes = ds.merge_volumes(volumes, list(_cfg(self.config, "triton_docker_mounts", []) or []))
        gpus = gpu_uuids(self.context)
        labels = {
            str(k): str(v) for k, v in dict(_cfg(self.config, "triton_docker_labels", {}) or {}).items()
        }
        labels.update(ds.owner_labels(self.run_id))
        own: dict[str, Any] = {
            "image": str(_cfg(self.config, "triton_docker_image", DEFAULT_IMAGE)),
            "command": self.command(flags, ports),
            "name": f"modelyzer-{self.run_id}-{self.server_starts + 1}",
            "init": True,
            "labels": labels,
            "volumes": volumes,
            "environment": {"CUDA_VISIBLE_DEVICES": ",".join(gpus), **env},
            "network_mode": "host",
            "detach": True,
        }
        shm = _cfg(self.config, "triton_docker_shm_size", None)
        if shm:
            own["shm_size"] = str(shm)
        if gpus:
            import docker.types

            own["device_requests"] = [docker.types.DeviceRequest(device_ids=gpus, capabilities=[["gpu"]])]
        merged = ds.merge_run_kwargs(own, args, self.log)
        if not ds.is_host_network(merged):
            merged["ports"] = {f"{port}/tcp": port for port in ports.values()}
        return merged

    # --- container --------------------------------------------------------------------------------------
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

    def _start_container(self, flags: dict[str, Any], env: dict[str, str], args: dict[str, Any]) -> None:
        self.stop()
        self.connect()
        flags = check_flags(flags)
        self.ports = self.choose_ports()
        kwargs = self.run_kwargs(flags, env, args, self.ports)
        ds.ensure_image(self.docker, str(kwargs["image"]), self.log)
        self.protocol = "grpc" if render_value(flags.get("allow-http", True)).lower() == "false" else "http"
        self.http = f"{self.host}:{self.ports['http']}"
        self.grpc = f"{self.host}:{self.ports['grpc']}"
        try:
            self.container = self.docker.containers.run(**kwargs)
        except Exception as exc:  # noqa: BLE001 - APIError with docker's reason
            self.stop()
            raise LaunchError(
                f"docker could not start {kwargs['image']} ({' '.join(map(str, kwargs['command']))}): "
                f"{ds.one_line(exc)}"
            ) from exc
        self.log.info(
            "docker: started container %s of %s (%s), log %s",
            self.container.name, kwargs["image"], self.http, self.log_path,
        )  # fmt: skip
        try:
            self._client = self._make_client()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self._server_key = self.server_key(flags, env, args)
        self.server_starts += 1

    def _make_client(self) -> Any:
        if self.protocol == "grpc":
            return super()._make_client()
        import tritonclient.http as httpclient

        return httpclient.InferenceServerClient(
            url=self.http, connection_timeout=5.0, network_timeout=LOAD_TIMEOUT_S
        )

    def _wait_ready(self) -> None:
        seconds = max(1, int(_cfg(self.config, "client_max_retries", 50)))
        deadline = time.monotonic() + seconds
        while True:
            if not self.running:
                status = getattr(self.container, "status", "gone")
                code = (getattr(self.container, "attrs", {}) or {}).get("State", {}).get("ExitCode")
                raise LaunchError(
                    f"the server container {status} (exit code {code}) while starting; last lines of its log:\n"
                    f"{self.log_tail()}"
                )
            try:
                if self._client.is_server_ready():
                    return
            except Exception:  # noqa: BLE001 - not up yet
                pass
            if time.monotonic() >= deadline:
                raise LaunchError(
                    f"the server in container {self.container.name} did not become ready within {seconds} s "
                    f"(client_max_retries={seconds}, polling {self.http}); last lines of its log:\n{self.log_tail()}"
                )
            time.sleep(POLL_S)

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

    def log_tail(self, lines: int = LOG_TAIL_LINES, since: int | None = None) -> str:
        if self.container is None:
            return "(no container)"
        try:
            raw = self.container.logs(tail=lines, **({"since": since} if since else {}))
        except Exception as exc:  # noqa: BLE001
            return f"(no log: {ds.one_line(exc)})"
        return raw.decode(errors="replace").rstrip() or "(empty log)"

    def endpoints(self, model: str) -> Endpoints:
        def pick(key: str, own: str) -> str:
            return str(_cfg(self.config, key, own)) if self._user_set(key) else own

        return Endpoints(
            http=pick("triton_http_endpoint", self.http),
            grpc=pick("triton_grpc_endpoint", self.grpc),
            metrics_url=pick("triton_metrics_url", f"http://{self.host}:{self.ports['metrics']}/metrics"),
            protocol=self.client_protocol,
            container_id=str(self.container.id) if self.container is not None else None,
            model_name=model,
        )

    # --- loading ------------------------------------------------------------------------------------------
    def _load(self, variant: ConfigVariant) -> None:
        since = int(time.time()) - 1
        try:
            super()._load(variant)
        except ModelLoadError as err:
            logged = [
                ln for ln in self.log_tail(200, since).splitlines() if "error" in ln.lower() or ln[:1] == "E"
            ]
            raise ModelLoadError(
                f"{err}" + (f"; server log: {' | '.join(logged[-5:])}" if logged else "")
            ) from err


@hookimpl
def register_launchers(register: Any) -> None:
    register("docker", DockerLauncher)
