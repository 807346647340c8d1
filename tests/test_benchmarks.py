"""Smoke test of benchmarks/mask_overhead.py: it runs and writes well-formed JSON.

Speed targets are NOT asserted here (timings depend on the machine and its load);
the full benchmark is run by hand: ``python benchmarks/mask_overhead.py``.
"""

import math


def test_mask_overhead_quick_writes_json(quick_benchmark):
    data = quick_benchmark("mask_overhead", threads=1)  # the checks every record passes: tests/conftest.py
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
