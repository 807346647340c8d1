"""Smoke test of benchmarks/trainer_overhead.py: it runs on tiny settings and writes well-formed JSON.

Speed targets are NOT asserted here (timings depend on the machine and its load); the full
benchmark is run by hand on an idle machine: ``python benchmarks/trainer_overhead.py``.
"""
import math


def test_trainer_overhead_quick_writes_json(quick_benchmark):
    data = quick_benchmark("trainer_overhead", threads=1)  # the checks every record passes: tests/conftest.py
    assert data["benchmark"] == "trainer_overhead" and "all_met" in data
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
