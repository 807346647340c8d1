"""Smoke test of benchmarks/trainer_overhead.py: it runs on tiny settings and writes well-formed JSON.

Speed targets are NOT asserted here (timings depend on the machine and its load); the full
benchmark is run by hand on an idle machine: ``python benchmarks/trainer_overhead.py``.
"""
import importlib.util
import json
import math
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "trainer_overhead.py"


def load_script():
    spec = importlib.util.spec_from_file_location("trainer_overhead", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_trainer_overhead_quick_writes_json(tmp_path):
    bench = load_script()
    out = tmp_path / "sub" / "trainer_overhead.json"
    returned = bench.main(["--quick", "--out", str(out), "--threads", "1"])

    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(returned))
    assert not list(out.parent.glob("*.tmp")) and not list(out.parent.glob(".*.tmp"))
    for key in ("date", "torch", "threads", "cpu_model", "settings", "targets", "results", "load_avg_at_start",
                "max_load_avg", "machine_busy", "all_met"):
        assert key in data
    assert data["benchmark"] == "trainer_overhead" and data["settings"]["quick"] is True
    res = data["results"]
    assert set(res["ms_per_step"]) == {"bare", "plain", "trainer"}
    assert set(res["ratios"]) == {"plain_vs_bare", "trainer_vs_bare", "trainer_vs_plain"}
    for k, s in res["ratio_spread"].items():
        assert s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"] and s["median"] == res["ratios"][k]
        assert s["rounds"] == data["settings"]["rounds"]
    assert all(math.isfinite(v) and v > 0 for v in res["ms_per_step"].values())
    assert len(res["load_avg_per_round"]) == data["settings"]["rounds"]
    assert res["steps_per_block"] == 3 and res["batches_per_epoch"] == 3
    assert res["trainer_equals_plain"] is True  # the Trainer's step is the hand-written step
    assert set(res["met"]) == {"trainer_vs_plain"} and isinstance(res["met"]["trainer_vs_plain"], bool)
