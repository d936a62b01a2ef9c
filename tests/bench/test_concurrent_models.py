"""bench/concurrent_models.py on its smallest setting: the printed counts are consistent (no timing)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\s+(?P<noise>\d+\.\d+)\s+(?P<seed>\d+)\s+(?P<name>quick|brute)\s+(?P<n>\d+)\s+(?P<until>\d+|-)\s+"
                 r"(?P<final>within|off)")


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("modelyzer_bench_concurrent", ROOT / "bench" / "concurrent_models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_surface_quick_reaches_the_optimum_in_fewer_measurements_than_brute(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert bench().main(["--surface", "gpu-pair", "--noise", "0", "--no-big", "--optuna-seeds", ""]) == 0
    out = capsys.readouterr().out
    assert "product 8 × 8 = 64 combinations" in out and "brute measures all of them" in out
    assert "optimum at formula or common loads" in out
    rows = {m["name"]: m for m in map(ROW.match, out.splitlines()) if m}
    assert set(rows) == {"quick", "brute"}
    quick, brute = rows["quick"], rows["brute"]
    assert int(brute["n"]) > 64  # every combination at its formula loads, then the sweep of the best ones
    for r in (quick, brute):
        assert r["until"] != "-" and int(r["until"]) <= int(r["n"])
        assert r["final"] == "within"
    assert int(quick["until"]) < int(brute["until"])
    assert int(quick["n"]) < int(brute["n"])
