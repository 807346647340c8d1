"""results.json writing: atomic, resumable, claims, config hash."""
import importlib
import json

import pytest

import sparsenb as snb
from sparsenb.nb.record import cache_status, config_hash, source_hash, write_json


def test_record_and_claim_write_results_json(tmp_path):
    run = snb.nb.Run("nbx", "smoke", {"A": 1, "B": [0.9]}, out_dir=tmp_path, fig_dir=tmp_path / "f")
    run.record("set/0.9/test_acc_mean", 0.97)
    snb.nb.record("n", 3)  # module-level functions act on the active run
    snb.nb.claim("X beats Y", True, detail="0.97 vs 0.95")
    run.claim("X beats Y", False)  # same text replaces, never duplicates
    run.finish()
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["notebook"] == "nbx" and data["profile"] == "smoke"
    assert data["metrics"] == {"set/0.9/test_acc_mean": 0.97, "n": 3}
    assert data["claims"] == [{"text": "X beats Y", "id": "X beats Y", "state": "not held", "holds": False,
                               "reason": "", "detail": ""}]
    assert data["config_hash"] == config_hash({"A": 1, "B": [0.9]})
    assert data["env"]["torch"] and "seconds" in data


def test_config_hash_is_order_independent_and_sensitive():
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_non_finite_values_are_refused(tmp_path):
    run = snb.nb.Run("nbx", "smoke", {}, out_dir=tmp_path)
    with pytest.raises(ValueError, match="non-finite"):
        run.record("x", float("nan"))


def test_cached_resumes_and_invalidates_on_config_change(tmp_path):
    calls = []

    def work():
        calls.append(1)
        return {"acc": 0.5}

    run = snb.nb.Run("nbx", "smoke", {"A": 1}, out_dir=tmp_path)
    assert run.cached("set/0.9/seed0", work) == {"acc": 0.5}
    run2 = snb.nb.Run("nbx", "smoke", {"A": 1}, out_dir=tmp_path)
    assert run2.cached("set/0.9/seed0", work) == {"acc": 0.5}
    assert len(calls) == 1, "a finished unit must be read back, not recomputed"
    run2.finish()
    done = json.loads((tmp_path / "results.json").read_text())["work"]
    assert done["units"] == 1 and done["units_from_cache"] == 1
    run3 = snb.nb.Run("nbx", "smoke", {"A": 2}, out_dir=tmp_path)
    run3.cached("set/0.9/seed0", work)
    assert len(calls) == 2, "a changed config must not reuse old results"


def test_source_hash_changes_with_an_installed_package_version(monkeypatch):
    rec = importlib.import_module("sparsenb.nb.record")  # the package exports a function of that name
    before, installed = source_hash(), rec._packages()
    assert "torch" in installed
    monkeypatch.setattr(rec, "_packages", lambda: {**installed, "torch": "0.0.1"})
    assert source_hash() != before, "a cached run computed under another torch must not be reused"
    monkeypatch.undo()
    assert source_hash() == before


def test_cached_result_of_other_code_is_computed_again(tmp_path, capsys):
    calls = []

    def work():
        calls.append(1)
        return {"acc": 0.5 + len(calls)}

    run = snb.nb.Run("nbx", "smoke", {"A": 1}, out_dir=tmp_path)
    run.cached("seed0", work)
    cache = tmp_path / "runs" / run.hash / "seed0.json"
    saved = json.loads(cache.read_text())
    assert saved["code"] == source_hash() and len(saved["code"]) == 12
    assert cache_status(tmp_path, run.hash)[0] == 1
    saved["code"] = "0123456789ab"  # as if an earlier version of sparsenb had computed it
    cache.write_text(json.dumps(saved))
    assert cache_status(tmp_path, run.hash)[0] == 0
    run2 = snb.nb.Run("nbx", "smoke", {"A": 1}, out_dir=tmp_path)
    assert run2.cached("seed0", work) == {"acc": 2.5} and len(calls) == 2
    assert "computed by other sparsenb code or package versions (sources 0123456789ab" in capsys.readouterr().out
    assert json.loads(cache.read_text())["code"] == source_hash()
    del saved["code"]  # caches written before the sources were hashed are not trusted either
    cache.write_text(json.dumps(saved))
    snb.nb.Run("nbx", "smoke", {"A": 1}, out_dir=tmp_path).cached("seed0", work)
    assert len(calls) == 3 and "sources not recorded" in capsys.readouterr().out


def test_source_hash_follows_the_notebooks_code_cells_not_its_text(tmp_path, monkeypatch):
    import importlib

    rec = importlib.import_module("sparsenb.nb.record")  # the module (sparsenb.nb.record is also a function)
    nb = {"cells": [{"cell_type": "markdown", "source": ["# About\n"]},
                    {"cell_type": "code", "source": ["cfg = dict(DROPOUT=0.0)\n"]}]}
    (tmp_path / "notebooks").mkdir()
    path = tmp_path / "notebooks" / "nbx.ipynb"
    path.write_text(json.dumps(nb))
    monkeypatch.setattr(rec, "project_root", lambda: tmp_path)
    base = rec.source_hash("nbx")
    assert base != rec.source_hash() and rec.source_hash("no_such_notebook") == rec.source_hash()
    nb["cells"][0]["source"] = ["# About this notebook\n"]  # text only: same code
    path.write_text(json.dumps(nb))
    assert rec.source_hash("nbx") == base
    nb["cells"][1]["source"] = ["cfg = dict(DROPOUT=0.3)\n"]  # a code cell changed: other code
    path.write_text(json.dumps(nb))
    assert rec.source_hash("nbx") != base


def test_write_json_is_atomic(tmp_path):
    p = tmp_path / "a" / "r.json"
    write_json(p, {"x": 1})
    write_json(p, {"x": 2})
    assert json.loads(p.read_text()) == {"x": 2}
    assert [q.name for q in p.parent.iterdir()] == ["r.json"]


def test_resolve_profiles_and_overrides():
    cfg = snb.nb.catalog.resolve("01_set_rigl", "smoke", {"EPOCHS": 3, "LR": None})
    assert cfg.EPOCHS == 3 and cfg.LR == snb.nb.catalog.NOTEBOOKS["01_set_rigl"].profiles["smoke"]["LR"]
    with pytest.raises(ValueError, match="unknown PROFILE"):
        snb.nb.catalog.resolve("01_set_rigl", "huge")
    with pytest.raises(ValueError, match="unknown parameter"):
        snb.nb.catalog.resolve("01_set_rigl", "smoke", {"EPOCH": 3})
