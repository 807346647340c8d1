"""The committed records still belong to their profiles: the resolved cpu profile of every notebook
hashes to the ``config_hash`` its committed ``results/<stem>/cpu/results.json`` was made with.

A change of where or how the settings are declared (catalog, typed configs) must not change any
setting of a committed record. Records being re-run with changed profiles (01, 06, 07, 13) are
checked by the gallery's record check instead (tests/test_notebook_hygiene.py).
"""
import dataclasses
import json
from pathlib import Path

import pytest

from sparsenb.nb.catalog import NOTEBOOKS, resolve
from sparsenb.nb.record import config_hash, record_config

ROOT = Path(__file__).resolve().parents[1]
RE_RUN_ELSEWHERE = {"01_set_rigl", "06_truly_sparse", "07_ctre", "13_alacpd"}
STEMS = sorted(s for s in NOTEBOOKS if s not in RE_RUN_ELSEWHERE)


def test_every_other_notebook_is_checked():
    assert len(STEMS) >= 9 and set(STEMS) | RE_RUN_ELSEWHERE == set(NOTEBOOKS)


@pytest.mark.parametrize("stem", STEMS)
def test_resolved_cpu_profile_hashes_to_the_committed_record(stem):
    record = json.loads((ROOT / "results" / stem / "cpu" / "results.json").read_text())
    cfg = record_config(stem, resolve(stem, "cpu"))  # less the settings declared "hashed": false
    assert cfg == record["config"], {k: (cfg.get(k), record["config"].get(k))
                                     for k in set(cfg) | set(record["config"]) if cfg.get(k) != record["config"].get(k)}
    assert config_hash(cfg) == record["config_hash"]


@pytest.mark.parametrize("stem", sorted(NOTEBOOKS))
def test_threads_is_a_documented_setting_of_every_notebook_and_unhashed_only_where_the_record_lacks_it(stem):
    """THREADS is in every spec (with help); a notebook whose committed record has no THREADS in its config
    declares it "hashed": false, so adding the setting left the record's config and hash as they were."""
    nb = NOTEBOOKS[stem]
    help_ = {f.name: f.metadata["help"] for f in dataclasses.fields(nb.config)}
    assert help_.get("THREADS", "").strip(), f"{stem}: THREADS is not a documented setting"
    record = json.loads((ROOT / "results" / stem / "cpu" / "results.json").read_text())
    assert ("THREADS" in nb.unhashed) == ("THREADS" not in record["config"])
    assert set(nb.unhashed) <= {"THREADS"}, "only the thread count may stay out of the hash"
    assert record["env"]["threads"] == (resolve(stem, "cpu").THREADS or record["env"]["threads"])


def test_an_unhashed_setting_is_applied_but_neither_stored_nor_hashed(tmp_path):
    import torch
    from sparsenb.nb.record import Run
    before = torch.get_num_threads()
    try:
        cfg = resolve("01_set_rigl", "smoke", {"THREADS": 2})
        assert cfg.THREADS == 2 and "THREADS" not in record_config("01_set_rigl", cfg)
        assert config_hash(record_config("01_set_rigl", cfg)) == config_hash(record_config("01_set_rigl", resolve("01_set_rigl", "smoke")))
        run = Run("01_set_rigl", "smoke", cfg, tmp_path / "r", tmp_path / "f")
        assert torch.get_num_threads() == 2, "Run applies THREADS"
        assert "THREADS" not in run.data["config"] and run.data["env"]["threads"] == 2
        assert any(d.startswith("threads 2") for d in run.destination.differences), "the thread count is still checked"
        hashed = resolve("02_pruning_at_init", "smoke", {"THREADS": 2})
        assert record_config("02_pruning_at_init", hashed)["THREADS"] == 2, "a hashed THREADS stays in the record"
    finally:
        torch.set_num_threads(before)
