"""Build the throwaway plugin distributions in `dists/` into wheels and install them with pip into a site dir.

setuptools reads and validates each `pyproject.toml` (name, version, packages, entry points) exactly as it would
for `pip install .`. Building the wheel itself through setuptools needs the `wheel` package (setuptools < 70.1,
as in this venv) and tests may not reach a package index, so the wheel is zipped here following the wheel spec
(PEP 427: `.dist-info` with METADATA, WHEEL, entry_points.txt and RECORD). pip then installs it for real, with
`--target`, so the plugins are found the way any pip-installed plugin is: through their entry points.
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

DISTS = Path(__file__).resolve().parent / "dists"


def _read_pyproject(project: Path) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # setuptools' notes about its own beta pyproject support
        from setuptools.config.pyprojecttoml import read_configuration

        return read_configuration(project / "pyproject.toml")


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_wheel(project: Path, out: Path) -> Path:
    """Zip `project` (a src-layout setuptools project) into a pure-Python wheel in `out`; return its path."""
    conf = _read_pyproject(project)
    meta, tool = conf["project"], conf["tool"]["setuptools"]
    name, version = meta["name"], meta["version"]
    dist = re.sub(r"[-_.]+", "_", name).lower()
    source = project / tool["package-dir"][""]
    files: dict[str, bytes] = {}
    for package in tool["packages"]:
        package_dir = source / package.replace(".", "/")
        for path in sorted(package_dir.glob("*.py")):
            files[path.relative_to(source).as_posix()] = path.read_bytes()
    info = f"{dist}-{version}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Summary: {meta['description']}"] if "description" in meta else []
    metadata += [f"Requires-Python: {meta['requires-python']}"] if "requires-python" in meta else []
    metadata += [f"Requires-Dist: {req}" for req in meta.get("dependencies", [])]
    files[f"{info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tests.third_party\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    entry_points = ""
    for group, points in meta.get("entry-points", {}).items():
        entry_points += f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()) + "\n"
    files[f"{info}/entry_points.txt"] = entry_points.encode()
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel


def install(projects: list[Path], work: Path) -> Path:
    """Build each project and `pip install` the wheels into `work/site` (no index, no dependencies)."""
    wheels = [build_wheel(project, work / "wheels") for project in projects]
    site = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--no-index",
         "--no-compile", "--target", str(site), *map(str, wheels)],
        check=True, capture_output=True, text=True, timeout=120,
    )
    return site
