"""The kernel imports no concrete dependency, and the package maps to `modelyzer.*` only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"tritonclient", "docker", "zmq", "matplotlib", "pdfkit", "pynvml", "psutil", "google", "grpc", "onnx", "optuna"}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "kernel").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_kernel_module_imports_no_concrete_dependency(path: Path) -> None:
    assert not imported_modules(path) & FORBIDDEN
    assert "modelyzer.plugins" not in path.read_text().replace('"modelyzer.plugins.', "")


def test_import_package_is_modelyzer_not_bare_folders(tmp_path: Path) -> None:
    code = (
        "import importlib.util as u, modelyzer.kernel, modelyzer.plugins, modelyzer.frontends;"
        "print(u.find_spec('kernel'), u.find_spec('plugins'), u.find_spec('frontends'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "None", "None"]
