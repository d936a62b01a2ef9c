"""The examples of docs/plugins.md run: every Python block executes (in a fresh interpreter, so the metric it
registers stays there) and defines its plugin, and the pyproject.toml block is a valid entry-point table."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

from tests.conftest import ROOT

DOC = ROOT / "docs" / "plugins.md"
RUN_BLOCKS = """\
import sys
for i, block in enumerate(sys.stdin.read().split("\\0")):
    namespace = {"__name__": f"doc_example_{i}"}
    exec(compile(block, f"docs/plugins.md block {i}", "exec"), namespace)
    hooks = [name for name, value in namespace.items() if hasattr(value, "modelyzer_impl")]
    assert hooks, f"block {i} implements no hook"
    print(*hooks)
"""


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


def test_python_examples_execute_and_implement_hooks() -> None:
    python = blocks("python")
    proc = subprocess.run([sys.executable, "-c", RUN_BLOCKS], input="\0".join(python), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    implemented = {hook for line in proc.stdout.splitlines() for hook in line.split()}
    assert len(proc.stdout.splitlines()) == len(python)
    assert {"register_launchers", "register_search_strategies", "register_load_generators",
            "register_metric_collectors", "register_rankers", "register_reporters", "register_model_config_codecs",
            "register_executors", "register_commands", "run_started", "measurement_recorded",
            "run_finished"} <= implemented


def test_pyproject_example_declares_entry_points() -> None:
    [pyproject] = blocks("toml")
    project = tomllib.loads(pyproject)["project"]
    assert project["entry-points"]["modelyzer"]["demo_ranker"] == "mz_demo.ranker"
