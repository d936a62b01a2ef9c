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


#: where the kernel may spell a plugin name: the config field table's defaults (`triton_launch_mode: local`,
#: `ranker: weighted`, …) and Model Analyzer's own rules between its keys (`dcgm_disable` needs `remote`) — values
#: of user-chosen keys, never a choice the kernel makes.
CONFIG_MODULES = ("config.py", "config_fields.py", "config_models.py", "config_rules.py", "config_values.py",
                  "config_whitelists.py")


def registered_names() -> set[str]:
    """Every name any installed plugin registered, in every registry (launchers, load generators, …)."""
    from modelyzer.kernel import registry

    return {name for kind in registry.KINDS for name in registry.registry(kind)}


def string_constants(path: Path) -> set[str]:
    """String literals of a module, docstrings excluded."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings}


@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "kernel").rglob("*.py") if p.name not in CONFIG_MODULES),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_kernel_names_no_plugin(path: Path) -> None:
    """The kernel chooses plugins by key and by declared capability: no registered name is spelt in its code."""
    names = registered_names()
    assert {"local", "replay", "weighted", "pbtxt", "perf_analyzer", "nvml"} <= names  # the check is armed
    spelt = sorted(string_constants(path) & names)
    assert not spelt, f"{path.relative_to(ROOT)} names plugin(s) {spelt}: declare a capability instead"


def test_the_name_check_catches_a_plugin_name(tmp_path: Path) -> None:
    module = tmp_path / "chooser.py"
    module.write_text('"""Docstrings may say weighted."""\n\ndef pick():\n    return "weighted"\n')
    assert string_constants(module) & registered_names() == {"weighted"}
