"""Where a benchmark writes: a trial never overwrites the committed record (benchmarks/common.py)."""
import argparse
import json

import pytest

from conftest import load_benchmark


@pytest.fixture
def common(tmp_path, monkeypatch):
    """benchmarks/common.py with the record and scratch folders moved into tmp_path."""
    mod = load_benchmark("truly_sparse")  # puts benchmarks/ on sys.path, where `common` lives
    import common as c
    assert mod.output_path is c.output_path
    monkeypatch.setattr(c, "ROOT", tmp_path)
    monkeypatch.setattr(c, "RECORDS", tmp_path / "results" / "benchmarks")
    monkeypatch.setattr(c, "SCRATCH", tmp_path / "results" / "_scratch" / "benchmarks")
    return c


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--widths", type=int, nargs="+")
    ap.add_argument("--out")
    return ap


def test_an_unmodified_run_writes_the_record(common):
    ap = _parser()
    assert common.output_path("x", ap, ap.parse_args([])) == common.RECORDS / "x.json"


@pytest.mark.parametrize("argv, named", [(["--quick"], "--quick"), (["--widths", "4096"], "--widths")])
def test_a_modified_run_writes_scratch_and_says_so(common, capsys, argv, named):
    ap = _parser()
    assert common.output_path("x", ap, ap.parse_args(argv)) == common.SCRATCH / "x.json"
    said = capsys.readouterr().out
    assert f"a modified run ({named}) writes results/_scratch/benchmarks/x.json, not the record" in said


def test_out_names_the_file_whatever_the_options(common, tmp_path):
    ap = _parser()
    assert common.output_path("x", ap, ap.parse_args(["--quick", "--out", str(tmp_path / "y.json")])) == \
        tmp_path / "y.json"


def test_a_quick_run_leaves_the_record_alone(common, capsys):
    """The whole script: ``--quick`` without ``--out`` writes scratch; the record stays byte for byte."""
    record = common.RECORDS / "crossover.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"the": "committed record"}\n')
    data = load_benchmark("crossover").main(["--quick", "--threads", "1"])
    assert record.read_text() == '{"the": "committed record"}\n'
    written = common.SCRATCH / "crossover.json"
    assert json.loads(written.read_text()) == json.loads(json.dumps(data))
    assert sorted(p.name for p in written.parent.iterdir()) == ["crossover.json"]  # no progress file left
    assert "not the record" in capsys.readouterr().out


def test_progress_stays_beside_the_output_until_the_run_finishes(common, tmp_path):
    out = tmp_path / "r.json"
    out.write_text("old\n")
    common.write_progress(out, {"rounds": 1})
    assert out.read_text() == "old\n" and json.loads((tmp_path / "r.partial.json").read_text()) == {"rounds": 1}
    common.write_result(out, {"rounds": 2})
    assert json.loads(out.read_text()) == {"rounds": 2} and not (tmp_path / "r.partial.json").exists()
