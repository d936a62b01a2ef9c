"""The ``c_api`` launcher: no server process; perf_analyzer embeds Triton through its C API.

perf_analyzer runs with ``--service-kind=triton_c_api --triton-server-directory=<triton_install_path>
--model-repository=<output model repository>`` and loads the variant itself, by its *variant name*
(``-m add_sub_config_3``) from the output model repository. So, unlike the server launchers:

- every variant directory is written in full (``writes_full_variant_dirs()``) and the ``name`` inside its
  ``config.pbtxt`` is the variant's name (``variant_config()``), as Triton requires the name to match the
  directory;
- ``ensure()`` starts nothing and loads nothing: it returns Endpoints whose ``model_name`` is the variant name and
  whose ``loadgen_flags`` carry the three C-API arguments (the same values ``perf_analyzer_args`` derives from
  the launch mode, so the command line is the same either way);
- nothing serves ``/metrics``, so there are no server-side metrics (GPU metrics come from the collectors on this
  host); this is logged once. Capabilities: ``in_process`` (the server lives inside perf_analyzer),
  ``serves_metrics`` and ``server_only_window`` False (no server to scrape or to sample without a model). ``triton_server_flags`` and ``triton_output_path`` do not apply (the config loader
  warns about them).

``start()`` checks that ``triton_install_path`` is a directory, so a wrong path is one clear error instead of a
failed perf_analyzer run per measurement. Left at its default (``/opt/tritonserver``) where that does not exist,
it is the layout ``.ci/setup`` makes in ``.tools/triton`` (``lib/libtritonserver.so`` and its libraries, and
``backends/``: Triton 2.51 from the nvidia-pytriton wheel). perf_analyzer gets ``<install>/lib`` on its
``LD_LIBRARY_PATH``, the layout's ``bin/`` (resolved; setup's links to the server's venv, whose python3 has numpy
for the Python backend's stub) first on ``PATH``, and ``triton_server_environment``, through
``Endpoints.loadgen_env``: the server runs in its process. perf_analyzer 2.51 in this mode does not exit when a
model fails to load (it waits forever): ``perf_analyzer_timeout`` ends it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from modelyzer.kernel.config import ProfileConfig
from modelyzer.kernel.errors import LaunchError
from modelyzer.kernel.hookspecs import hookimpl
from modelyzer.kernel.interfaces import Launcher, RunContext
from modelyzer.kernel.models import ConfigVariant, Endpoints, RunConfig
from modelyzer.plugins.setup_tools import setup_dir

SERVICE_KIND = "triton_c_api"


class CApiLauncher(Launcher):
    """perf_analyzer hosts the server; see the module docstring."""

    serves_metrics = False
    server_only_window = False
    in_process = True

    def __init__(self, config: ProfileConfig, context: RunContext) -> None:
        self.config = config
        self.context = context
        self.server_starts = 0
        self.model_loads = 0
        installed = setup_dir("triton")
        default = "triton_install_path" not in config.user_set and not Path(config.triton_install_path).is_dir()
        self.install_path = installed if default and installed is not None else Path(config.triton_install_path)
        self._told = False

    def loadgen_env(self) -> dict[str, str]:
        """The embedded server's libraries first on the library path, its `bin/` (the python3 whose packages the
        Python backend's stub imports) first on PATH when the layout has one, then the user's server environment."""
        env = {"LD_LIBRARY_PATH": os.pathsep.join(
            p for p in (str(self.install_path / "lib"), os.environ.get("LD_LIBRARY_PATH", "")) if p)}
        bin_dir = self.install_path / "bin"
        if bin_dir.is_dir():  # resolved: the stub finds its venv only through the real directory
            env["PATH"] = os.pathsep.join(p for p in (str(bin_dir.resolve()), os.environ.get("PATH", "")) if p)
        env.update({str(k): os.path.expandvars(str(v)) for k, v in self.config.triton_server_environment.items()})
        return env

    def loadgen_flags(self) -> dict[str, Any]:
        return {
            "service-kind": SERVICE_KIND,
            "triton-server-directory": str(self.install_path),
            "model-repository": str(self.context.output_model_repository),
        }

    def _tell_once(self) -> None:
        if not self._told:
            self._told = True
            self.context.log.info(
                "c_api launch mode: perf_analyzer embeds Triton from %s; there is no server, so no server "
                "metrics (/metrics) and no server log",
                self.install_path,
            )

    def check(self) -> None:
        """triton_install_path is a directory (perf_analyzer embeds the server from it)."""
        if not self.install_path.is_dir():
            raise LaunchError(
                f"triton_install_path {str(self.install_path)!r} is not a directory; set it to the Triton "
                "installation perf_analyzer should embed (it holds lib/libtritonserver.so)"
            )

    def start(self) -> None:
        self.check()
        self._tell_once()

    def ensure(self, variant: ConfigVariant, variant_dir: Path, run_config: RunConfig) -> Endpoints:
        self._tell_once()
        return Endpoints(
            protocol="c_api",
            model_name=variant.name or run_config.model,
            loadgen_flags=self.loadgen_flags(),
            loadgen_env=self.loadgen_env(),
        )

    def stop(self) -> None:
        """Nothing runs between measurements."""

    def writes_full_variant_dirs(self) -> bool:
        return True

    def variant_config(self, variant: ConfigVariant) -> dict[str, Any]:
        """The variant's config named after the variant (perf_analyzer loads it by that name)."""
        config = dict(variant.config)
        if variant.name:
            config["name"] = variant.name
        return config


@hookimpl
def register_launchers(register: Any) -> None:
    register("c_api", CApiLauncher)
