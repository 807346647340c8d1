"""A run never destroys a record; the committed record is written only on purpose; provenance."""
import datetime
import importlib
import json

import pytest
import torch

import sparsenb as snb
R = importlib.import_module("sparsenb.nb.record")  # the module (``sparsenb.nb.record`` is also a function)
from sparsenb.nb.catalog import resolve


class FakeFigure:
    def __init__(self, content: bytes):
        self.content = content

    def savefig(self, path, **kwargs):
        open(path, "wb").write(self.content)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project root in tmp, so that canonical folders are tmp/results/<nb>/<profile>."""
    monkeypatch.setattr(R, "project_root", lambda: tmp_path)
    monkeypatch.delenv(R.RECORD_ENV, raising=False)
    threads = torch.get_num_threads()
    yield tmp_path
    torch.set_num_threads(threads)


def test_nothing_is_written_until_finish_and_an_unfinished_run_keeps_the_old_record(tmp_path):
    old = {"metrics": {"acc": 0.9}, "claims": []}
    (tmp_path / "results.json").write_text(json.dumps(old))
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "curve.png").write_bytes(b"old")
    run = snb.nb.Run("nbx", "smoke", {"A": 1}, out_dir=tmp_path, fig_dir=tmp_path / "figures")
    assert json.loads((tmp_path / "results.json").read_text()) == old, "a new run must not touch results.json"
    run.record("acc", 0.5)
    run.claim("X beats Y", False)
    run.figure(FakeFigure(b"new"), "curve")
    # interrupted here: the previous record and figure are intact, the new state is in the partial files
    assert json.loads((tmp_path / "results.json").read_text()) == old
    assert (tmp_path / "figures" / "curve.png").read_bytes() == b"old"
    assert json.loads(run.partial_path.read_text())["metrics"] == {"acc": 0.5}
    assert run.finish() is None and run.path == tmp_path / "results.json"
    new = json.loads((tmp_path / "results.json").read_text())
    assert new["metrics"] == {"acc": 0.5} and new["finished"]
    assert (tmp_path / "figures" / "curve.png").read_bytes() == b"new"
    assert (tmp_path / "figures" / "curve.svg").read_bytes() == b"new"
    assert not run.partial_path.exists() and not (tmp_path / "figures.partial").exists()
    run.record("late", 1)  # re-running a record cell after finish keeps results.json complete
    assert json.loads((tmp_path / "results.json").read_text())["metrics"] == {"acc": 0.5, "late": 1}


def test_figures_of_a_run_that_never_finished_are_not_published_by_the_next(tmp_path):
    dead = snb.nb.Run("nbx", "smoke", {"A": 1}, out_dir=tmp_path, fig_dir=tmp_path / "figures")
    dead.figure(FakeFigure(b"stale"), "only_in_the_dead_run")
    run = snb.nb.Run("nbx", "smoke", {"A": 1}, out_dir=tmp_path, fig_dir=tmp_path / "figures")
    run.figure(FakeFigure(b"new"), "curve")
    run.finish()
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["curve.png", "curve.svg"]


def test_an_unmodified_profile_run_writes_the_canonical_folders(project):
    cfg = resolve("01_set_rigl", "cpu")
    torch.set_num_threads(1)
    run = snb.nb.Run("01_set_rigl", "cpu", cfg, device="cpu")
    assert run.out_dir == project / "results" / "01_set_rigl" / "cpu"
    assert run.fig_dir == project / "figures" / "01_set_rigl" / "cpu"


def test_a_modified_run_goes_to_scratch_named_by_its_config_hash(project, capsys):
    """`-p DATASET digits` on 01 must not touch results/01_set_rigl/cpu (issue 11)."""
    torch.set_num_threads(1)
    cfg = resolve("01_set_rigl", "cpu", {"DATASET": "digits"})
    run = snb.nb.Run("01_set_rigl", "cpu", cfg, device="cpu")
    h = R.config_hash(R.record_config("01_set_rigl", cfg))
    assert run.out_dir == project / "results" / "_scratch" / "01_set_rigl" / f"cpu-{h}"
    assert run.fig_dir == project / "figures" / "_scratch" / "01_set_rigl" / f"cpu-{h}"
    assert run.destination.differences == ('DATASET "digits" (profile: "mnist5k")',)
    assert "writes the scratch folder" in capsys.readouterr().out  # said where, in Jupyter too


def test_thread_count_and_device_count_as_modifications(project):
    cfg = resolve("01_set_rigl", "cpu")
    assert R.destination("01_set_rigl", "cpu", cfg, threads=1, device="cpu").canonical
    two = R.destination("01_set_rigl", "cpu", cfg, threads=2, device="cpu")
    assert not two.canonical and two.out_dir.name.endswith("-threads2")
    gpu = R.destination("01_set_rigl", "cpu", cfg, threads=1, device="cuda:0")
    assert not gpu.canonical and "device cuda (profile: cpu)" in gpu.differences
    paper = resolve("01_set_rigl", "paper")
    assert R.destination("01_set_rigl", "paper", paper, threads=1, device="cuda").canonical
    slak = resolve("12_slak", "cpu")  # THREADS in the config: the profile's 2 threads are expected
    assert R.destination("12_slak", "cpu", slak, threads=2).canonical
    assert not R.destination("12_slak", "cpu", slak, threads=1).canonical
    assert not R.destination("nbx", "cpu", {}, threads=1).canonical, "no catalog profile: never canonical"


def test_pointing_a_modified_run_at_the_committed_record_is_refused(project, monkeypatch):
    torch.set_num_threads(1)
    cfg = resolve("01_set_rigl", "cpu", {"EPOCHS": 2})
    canon = project / "results" / "01_set_rigl" / "cpu"
    with pytest.raises(R.RecordProtectedError, match="EPOCHS 2 \\(profile: 30\\).*SPARSENB_RECORD=1"):
        snb.nb.Run("01_set_rigl", "cpu", cfg, out_dir=canon, device="cpu")
    with pytest.raises(R.RecordProtectedError):
        snb.nb.Run("01_set_rigl", "cpu", cfg, out_dir=project / "elsewhere",
                fig_dir=project / "figures" / "01_set_rigl" / "cpu", device="cpu")
    monkeypatch.setenv(R.RECORD_ENV, "1")  # on purpose (sparsenb run --record)
    assert snb.nb.Run("01_set_rigl", "cpu", cfg, device="cpu").out_dir == canon


def test_caches_of_two_configs_never_share_a_file(tmp_path):
    a = snb.nb.Run("nbx", "smoke", {"DATASET": "mnist5k"}, out_dir=tmp_path)
    b = snb.nb.Run("nbx", "smoke", {"DATASET": "digits"}, out_dir=tmp_path)
    a.cached("set/0.9/seed0", lambda: {"acc": 1})
    b.cached("set/0.9/seed0", lambda: {"acc": 2})
    files = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "runs").rglob("*.json"))
    assert files == sorted([f"runs/{a.hash}/set_0.9_seed0.json", f"runs/{b.hash}/set_0.9_seed0.json"])
    assert snb.nb.Run("nbx", "smoke", {"DATASET": "mnist5k"}, out_dir=tmp_path).cached("set/0.9/seed0", dict) == {"acc": 1}


def test_cache_status_counts_units_of_this_config(tmp_path):
    run = snb.nb.Run("nbx", "smoke", {"A": 1}, out_dir=tmp_path)
    for i in range(3):
        run.cached(f"u{i}", lambda: {})
    assert R.cache_status(tmp_path, run.hash) == (3, None)
    run.finish()
    assert R.cache_status(tmp_path, run.hash) == (3, 3)
    assert R.cache_status(tmp_path, "other") == (0, None)


def test_results_record_provenance(tmp_path):
    run = snb.nb.Run("nbx", "smoke", {}, out_dir=tmp_path, device="cpu")
    run.finish()
    res = json.loads((tmp_path / "results.json").read_text())
    env = res["env"]
    code = env["code"]
    assert ("commit" in code and len(code["commit"]) == 40 and isinstance(code["dirty"], bool)) or "version" in code
    assert env["packages"]["torch"] == torch.__version__.split("+")[0] or env["packages"]["torch"] == torch.__version__
    assert env["cpu"] and env["cpu_capability"] and env["threads"] == torch.get_num_threads()
    start, end = (datetime.datetime.fromisoformat(res[k]) for k in ("started", "finished"))
    assert start <= end and start.tzinfo is not None


def test_a_figure_is_saved_as_png_and_svg_staged_until_finish_and_returns_nothing(tmp_path):
    import matplotlib.pyplot as plt

    run = snb.nb.Run("nbx", "smoke", {}, out_dir=tmp_path, fig_dir=tmp_path / "figures")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert run.figure(fig, "line") is None, "a figure cell must show no Out: line"
    staged = sorted(p.name for p in (tmp_path / "figures.partial").iterdir())
    assert staged == ["line.png", "line.svg"] and not (tmp_path / "figures").exists()
    run.finish()
    png, svg = tmp_path / "figures" / "line.png", tmp_path / "figures" / "line.svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = svg.read_text()
    assert "<svg" in text and "<dc:date>" not in text
    run.figure(fig, "line")  # after finish a figure goes straight to fig_dir: the same SVG, byte for byte
    assert svg.read_text() == text
    plt.close(fig)
