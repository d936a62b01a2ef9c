"""modelyzer's microkernel: hook specs, config, data model, results store, ranking and the profile loop.

Nothing in here imports a concrete dependency (tritonclient, docker, zmq, matplotlib…): those live in plugins.
"""

from importlib import metadata

try:
    __version__ = metadata.version("modelyzer")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
