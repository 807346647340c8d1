"""The README performance table and the measured crossover agree with results/benchmarks/*.json;
``sparse_linear(backend=...)`` builds the layer it says."""
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from sparsenb.layers import CROSSOVER_DENSITY, TrulySparseLinear, choose_backend, sparse_linear
from sparsenb.layers.backend import crossover_densities
from sparsenb.nb.perf_table import perf_markdown, update_perf_table

ROOT = Path(__file__).resolve().parents[1]


def test_readme_performance_table_matches_benchmark_records():
    assert update_perf_table(ROOT / "README.md", check=True), "run `sparsenb gallery` after re-running benchmarks/"


@pytest.mark.parametrize("met, q1, q3, bound, shown", [
    (True, 0.58, 0.67, 0.6, "yes (bound within quartiles)"),
    (False, 0.58, 0.67, 0.6, "**no** (bound within quartiles)"),
    (True, 0.50, 0.55, 0.6, "yes"),
    (False, 0.62, 0.70, 0.6, "**no**"),
    (None, 0.58, 0.67, 0.6, "—"),
])
def test_verdict_says_when_the_bound_lies_within_the_quartiles(met, q1, q3, bound, shown):
    from sparsenb.nb.perf_table import _verdict
    assert _verdict(met, {"q1": q1, "median": (q1 + q3) / 2, "q3": q3}, bound) == shown


def test_perf_table_lists_missing_records(tmp_path):
    md = perf_markdown(tmp_path)
    assert md.count("not run yet") == 6 and md.splitlines()[0].startswith("| benchmark |")


def test_scale_row_reads_the_notebook_record(tmp_path):
    path = tmp_path / "results" / "06_truly_sparse" / "scale" / "results.json"
    path.parent.mkdir(parents=True)
    metrics = {"big/seconds": 300.0, "big/train_seconds": 120.0, "big/peak_rss_mb": 2048.0,
               "big/sizes": [784, 500000, 500000, 10], "big/epochs": 1}
    path.write_text(json.dumps({"metrics": metrics, "config": {"DATASET": "mnist5k"}, "env": {"threads": 1},
                                "finished": "2026-12-06T20:00:00+00:00"}))
    row = [r for r in perf_markdown(tmp_path).splitlines() if r.startswith("| 1M-neuron run")][0]
    assert "784-500000-500000-10" in row and "5.0 min (training 2.0 min), peak RSS 2.0 GB" in row
    assert "| ≤ 4 min | **no** | 1 | ? | 2026-12-06 |" in row


def test_curci_rows_show_epoch_ratio_target_and_verdict(tmp_path):
    path = tmp_path / "results" / "benchmarks" / "curci_reference.json"
    path.parent.mkdir(parents=True)
    spread = {"median": 5.5, "q1": 5.2, "q3": 5.8}
    res = {"sizes": [784, 10000, 10000, 10000, 10], "epoch_s": {"sparsenb": 30.0, "reference": 165.0},
           "speedup": {"epoch": spread, "batch": {"median": 5.9}, "evolve": {"median": 33.3}}}
    path.write_text(json.dumps({"results": {"10000": res}, "threads": 2, "max_load_avg": 2.5,
                                "date": "2026-12-07T01:00:00+00:00",
                                "target_met": [{"hidden": 10000, "bound": 5.0, "value": 5.5, "met": True}]}))
    row = [r for r in perf_markdown(tmp_path).splitlines() if r.startswith("| vs reference code")][0]
    assert "784-10000-10000-10000-10" in row and "5.500x (5.200–5.800) faster (30.0 vs 165.0 s)" in row
    assert "training batch 5.90x, evolution 33x | ≥ 5x | yes | 2 | 2.5 | 2026-12-07 |" in row


def test_crossover_constant_is_the_committed_measurement():
    data = json.loads((ROOT / "results" / "benchmarks" / "crossover.json").read_text())
    measured = {int(w): c for w, c in data["crossover_density_rounded"].items()}  # 0.0: never faster
    assert measured == CROSSOVER_DENSITY, "copy the crossover printed by benchmarks/crossover.py into backend.py"
    assert crossover_densities(data["rows"]) == {int(w): c for w, c in data["crossover_density"].items()}


def test_crossover_densities_hand_made():
    rows = [{"width": 8, "variant": "masked", "density": 0.1, "ms": 2.0},
            {"width": 8, "variant": "sparse", "density": 0.1, "ms": 1.0},   # ratio 0.5
            {"width": 8, "variant": "sparse", "density": 0.4, "ms": 4.0},   # ratio 2: crossing at 0.2 (log-log)
            {"width": 9, "variant": "masked", "density": 0.1, "ms": 1.0},
            {"width": 9, "variant": "sparse", "density": 0.1, "ms": 3.0}]  # never faster
    cross = crossover_densities(rows)
    assert cross[8] == pytest.approx(0.2) and cross[9] is None


def test_choose_backend_interpolates_in_log_width():
    table = {100: 0.1, 10000: 0.3}
    assert choose_backend(50, 50, 0.09, table) == "truly_sparse"   # below the smallest width: its value
    assert choose_backend(50, 50, 0.11, table) == "masked"
    assert choose_backend(1000, 1000, 0.19, table) == "truly_sparse"  # halfway in log width: 0.2
    assert choose_backend(1000, 1000, 0.21, table) == "masked"
    assert choose_backend(100, 1_000_000, 0.25, table) == "truly_sparse"  # sqrt(1e8) = 1e4 -> 0.3
    with pytest.raises(ValueError, match="density"):
        choose_backend(10, 10, 0.0)


@pytest.mark.parametrize("backend", ["masked", "truly_sparse", "auto"])
def test_sparse_linear_builds_the_chosen_layer_with_exact_nnz(backend):
    layer = sparse_linear(30, 20, 0.05, backend=backend, generator=torch.Generator().manual_seed(0))
    chosen = choose_backend(30, 20, 0.05) if backend == "auto" else backend
    assert layer.sparse_backend == chosen
    if chosen == "truly_sparse":
        assert isinstance(layer, TrulySparseLinear) and layer.nnz == 30
    else:
        assert isinstance(layer, nn.Linear) and int(layer.weight_mask.sum()) == 30
        assert int((layer.weight != 0).sum()) == 30
    assert layer(torch.randn(4, 30)).shape == (4, 20)
    with pytest.raises(ValueError, match="backend"):
        sparse_linear(3, 3, 0.5, backend="gpu")


def test_crossover_table_reads_a_crossover_benchmark_output(tmp_path):
    from sparsenb.layers import crossover_table
    assert crossover_table(ROOT / "results" / "benchmarks" / "crossover.json") == pytest.approx(
        {int(w): c for w, c in CROSSOVER_DENSITY.items()}, abs=0.005)  # the committed record, unrounded
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps({"crossover_density": {"16": None, "64": 0.5}}))
    table = crossover_table(mine)
    assert table == {16: 0.0, 64: 0.5}  # never faster at 16^2: the masked layer everywhere there
    assert sparse_linear(64, 64, 0.4, backend="auto", table=table).sparse_backend == "truly_sparse"
    assert sparse_linear(64, 64, 0.4, backend="auto").sparse_backend == "masked"  # by CROSSOVER_DENSITY
    assert sparse_linear(16, 16, 0.01, backend="auto", table=table).sparse_backend == "masked"
    bad = tmp_path / "bad.json"
    bad.write_text('{"rows": []}')
    with pytest.raises(ValueError, match=r"not an output of benchmarks/crossover.py .*crossover.py --out"):
        crossover_table(bad)
    with pytest.raises(ValueError, match="not an output"):
        crossover_table(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="table is empty"):
        choose_backend(64, 64, 0.1, {})  # an empty table is refused, not replaced by the default
