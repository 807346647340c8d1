"""Smoke test of benchmarks/truly_sparse.py: it runs and writes well-formed JSON.

Speed targets are NOT asserted (timings depend on the machine and its load); the full
benchmark is run by hand: ``python benchmarks/truly_sparse.py``.
"""

import math

import pytest
import torch

from conftest import load_benchmark


def test_truly_sparse_benchmark_quick_writes_json(quick_benchmark):
    data = quick_benchmark("truly_sparse", threads=2)  # the checks every record passes: tests/conftest.py
    assert "load_avg_at_end" in data and "target_met" in data
    assert data["settings"]["thread_counts"] == [1, 2]
    widths = [str(w) for w in data["settings"]["widths"]]
    assert list(data["results"]) == widths
    names = ({"dense", "masked"} | {f"sparse@{d:g}" for d in data["settings"]["densities"]}
             | {f"compiled@{d:g}" for d in data["settings"]["compiled_densities"]})
    assert data["settings"]["compiled_densities"] == [0.1]
    for w, res in data["results"].items():
        assert set(res["contexts"]) == {"hidden", "standalone"}
        for ctx in res["contexts"].values():
            assert set(ctx["threads"]) == {"1", "2"}
            for per in ctx["threads"].values():
                assert set(per["ms_per_step"]) == names
                assert set(per["speedup_vs_dense"]) == names - {"dense"}
                for v in list(per["ms_per_step"].values()) + list(per["speedup_vs_dense"].values()):
                    assert math.isfinite(v) and v > 0
                assert all(len(v) == data["settings"]["rounds"][w] for v in per["ms_per_step_rounds"].values())
            assert set(ctx["thread_scaling"]) == names
            assert all(s["min"] <= s["median"] <= s["max"] for s in ctx["thread_scaling"].values())
        assert len(res["loadavg_1min_rounds"]) == data["settings"]["rounds"][w]
        assert res["nnz"]["compiled@0.1"] == res["nnz"]["sparse@0.1"]  # the same layer, other transposes
        for v in res["step_peak_rss_mb"].values():
            assert math.isfinite(v) and v >= 0
        assert set(res["layer_bytes"]) == names and all(b > 0 for b in res["layer_bytes"].values())
        # truly sparse layer memory shrinks with density; nnz is exact
        d_hi, d_lo = max(data["settings"]["densities"]), min(data["settings"]["densities"])
        assert res["layer_bytes"][f"sparse@{d_lo:g}"] < res["layer_bytes"][f"sparse@{d_hi:g}"]
        assert res["nnz"][f"sparse@{d_hi:g}"] == round(d_hi * int(w) ** 2)
    assert data["target_met"] == []  # the quick widths are not the target's widths
    mlp = data["mlp"]  # the whole-model training step: both thread counts, paired rounds, exact nnz
    assert set(mlp["ms_per_step"]) == {"1", "2"} and all(v > 0 for v in mlp["ms_per_step"].values())
    assert mlp["thread_scaling"]["rounds"] == len(mlp["ms_per_step_rounds"]["1"]) == len(mlp["loadavg_1min_rounds"])
    assert len(mlp["density"]) == len(mlp["sizes"]) - 1 and mlp["density"][1] == pytest.approx(0.1, abs=1e-3)


def test_hidden_context_feeds_column_major_input_and_gradient():
    """The ``hidden`` context gives the layer what a hidden layer of TrulySparseMLP gets: a column-major
    input that requires grad and a column-major upstream gradient; ``standalone`` a row-major leaf."""
    bench = load_benchmark("truly_sparse")
    x, g = bench.context_inputs("hidden", 8, 32)
    assert x.shape == g.shape == (8, 32) and x.stride() == g.stride() == (1, 8) and x.requires_grad and x.is_leaf
    x, g = bench.context_inputs("standalone", 8, 32)
    assert x.stride() == (32, 1) and x.requires_grad and g is None
    layer = bench.build("sparse", 32, 0.1)
    x, g = bench.context_inputs("hidden", 8, 32)
    bench.step(layer, x, g)  # y.backward(g): the input gradient is exactly g W
    w = layer.to_dense()
    assert torch.allclose(x.grad, g @ w, atol=1e-6)
    with pytest.raises(ValueError, match="unknown context"):
        bench.context_inputs("middle", 8, 32)


def test_targets_are_checked_per_variant_and_context():
    """The thread-scaling target is checked for the shipped layer (``sparse``) and for the same layer with
    compiled transposes (``compiled``), each in both contexts, with the value of that variant and context."""
    bench = load_benchmark("truly_sparse")

    def ctx(sparse_scaling: float, compiled_scaling: float) -> dict:
        names = ("sparse@0.01", "compiled@0.01")
        return {"threads": {"2": {"speedup_vs_dense": {n: 12.0 for n in names}}},
                "thread_scaling": {"sparse@0.01": {"median": sparse_scaling},
                                   "compiled@0.01": {"median": compiled_scaling}}}

    data = {"threads": 2, "results": {"4096": {"contexts": {"hidden": ctx(0.54, 0.55),
                                                            "standalone": ctx(0.65, 0.59)}}}}
    got = {(t["variant"], t["what"], t["context"]): (t["value"], t["met"]) for t in bench.targets_met(data)}
    assert got == {("sparse", "speedup_vs_dense", "hidden"): (12.0, True),
                   ("sparse", "speedup_vs_dense", "standalone"): (12.0, True),
                   ("sparse", "thread_scaling", "hidden"): (0.54, True),
                   ("sparse", "thread_scaling", "standalone"): (0.65, False),
                   ("compiled", "thread_scaling", "hidden"): (0.55, True),
                   ("compiled", "thread_scaling", "standalone"): (0.59, True)}


def test_rounds_option_sets_the_paired_rounds_of_every_width(tmp_path, capsys):
    bench = load_benchmark("truly_sparse")
    data = bench.main(["--quick", "--widths", "64", "--no-memory", "--rounds", "3", "--threads", "2",
                       "--out", str(tmp_path / "t.json")])
    assert data["settings"]["rounds"]["64"] == 3
    ctx = data["results"]["64"]["contexts"]["standalone"]
    assert all(len(v) == 3 for v in ctx["threads"]["2"]["ms_per_step_rounds"].values())
    assert ctx["thread_scaling"]["sparse@0.1"]["rounds"] == 3
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--rounds", "0", "--out", str(tmp_path / "u.json")])
    assert "--rounds must be >= 1, got 0" in capsys.readouterr().err
