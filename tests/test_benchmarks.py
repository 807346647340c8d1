"""Smoke test of benchmarks/mask_overhead.py: it runs and writes well-formed JSON.

Speed targets are NOT asserted here (timings depend on the machine and its load);
the full benchmark is run by hand: ``python benchmarks/mask_overhead.py``.
"""

import importlib.util
import json
import math
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "mask_overhead.py"


def load_script():
    spec = importlib.util.spec_from_file_location("mask_overhead", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_mask_overhead_quick_writes_json(tmp_path):
    bench = load_script()
    out = tmp_path / "sub" / "mask_overhead.json"
    returned = bench.main(["--quick", "--out", str(out), "--threads", "1"])

    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(returned))
    assert not list(out.parent.glob("*.tmp"))  # atomic write left no temp file
    for key in ("date", "torch", "threads", "cpu_model", "settings", "targets", "results", "load_avg_at_start",
                "max_load_avg", "machine_busy"):
        assert key in data
    assert data["threads"] >= 1
    assert data["settings"]["quick"] is True
    assert set(data["targets"]) == {"static", "rigl"}
    assert set(data["results"]) == {"lenet300", "mlp2048"}
    for res in data["results"].values():
        assert set(res["ratios"]) == {"remask", "static", "rigl"}  # the re-mask baseline, same run
        for v, s in res["ratio_spread"].items():
            assert s["min"] <= s["q1"] <= s["median"] <= s["q3"] <= s["max"] and s["median"] == res["ratios"][v]
        assert len(res["load_avg_per_round"]) == data["settings"]["rounds"]
        for v in res["ratios"].values():
            assert math.isfinite(v) and v > 0
        for v in res["ms_per_step"].values():
            assert math.isfinite(v) and v > 0
        assert set(res["met"]) == {"static", "rigl"}
        assert all(isinstance(m, bool) for m in res["met"].values())
        assert all(res["exactly_sparse"].values())  # pruned weights stayed exactly zero
        assert res["rigl_mask_changes"] > 0  # the quick settings exercise RigL's update path
