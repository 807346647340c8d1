"""Notebook specs (sparsenb/experiments/specs/<stem>.json): typed, documented, frozen settings whose
defaults are the cpu profile, profiles written as changes, gallery rows formatted by the experiment."""
import dataclasses
import importlib
import json

import pytest

from sparsenb.experiments.spec import SPECS, Notebook, load_spec, settings_class, settings_help
from sparsenb.nb.catalog import NOTEBOOKS

STEMS = sorted(p.stem for p in SPECS.glob("*.json"))


def test_every_notebook_has_a_spec_and_every_spec_a_notebook():
    assert STEMS == sorted(NOTEBOOKS)


@pytest.mark.parametrize("stem", STEMS)
def test_settings_are_a_frozen_documented_dataclass_bound_in_the_experiment(stem):
    spec = load_spec(stem)
    cls = settings_class(stem)
    assert importlib.import_module(spec["module"]).Settings is cls
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
    assert all(h.strip() for h in settings_help(cls).values()), "every setting has its help"
    s = cls()
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(s, dataclasses.fields(cls)[0].name, None)
    assert dataclasses.asdict(s) == {n: v["default"] for n, v in spec["settings"].items()}


@pytest.mark.parametrize("stem", STEMS)
def test_profiles_are_changes_from_the_defaults(stem):
    spec = load_spec(stem)
    assert set(spec["profiles"]["cpu"]) <= {"_omit"}, "the defaults are the cpu profile"
    for profile, changes in spec["profiles"].items():
        full = NOTEBOOKS[stem].profiles[profile]
        omit = changes.get("_omit", [])
        changes = {k: v for k, v in changes.items() if k != "_omit"}
        expected = {**{n: v["default"] for n, v in spec["settings"].items()}, **changes}
        assert full == {k: v for k, v in expected.items() if k not in omit}
        assert all(full[k] != spec["settings"][k]["default"] for k in changes), f"{profile}: a change equal to the default"


def test_a_profile_can_lack_settings_its_record_predates():
    nb = Notebook(stem="x", title="", paper="", claim="", config=settings_class("07_ctre"),
                  profiles={"old": {"SEEDS": 1, "_omit": ["PATIENCE"]}}, minutes={})
    assert "PATIENCE" not in nb.profiles["old"] and nb.profiles["old"]["SEEDS"] == 1
    with pytest.raises(ValueError, match="NOPE"):
        Notebook(stem="x", title="", paper="", claim="", config=settings_class("07_ctre"),
                 profiles={"old": {"_omit": ["NOPE"]}}, minutes={})


def test_a_list_default_is_not_shared_between_instances():
    cls = settings_class("07_ctre")
    assert cls().DATASETS is not cls().DATASETS


def test_a_profile_naming_an_unknown_setting_is_refused():
    with pytest.raises(ValueError, match=r"profile 'smoke' sets \['EPOCH'\].*add the field"):
        Notebook(stem="x", title="", paper="", claim="", config=settings_class("07_ctre"),
                 profiles={"smoke": {"EPOCH": 3}}, minutes={})


@pytest.mark.parametrize("stem", STEMS)
def test_gallery_rows_have_their_formatter_and_it_formats_the_committed_record(stem):
    from pathlib import Path

    metrics = json.loads((Path(__file__).resolve().parents[1] / "results" / stem / "cpu" / "results.json")
                         .read_text())["metrics"]
    for row in NOTEBOOKS[stem].gallery:
        assert isinstance(row.ours(metrics), str) and row.ours(metrics)
        row.ours({})  # a record without the metric still formats (as nan or —), never raises


@pytest.mark.parametrize("module", ["ctre", "dsn", "ugts"])
def test_an_experiment_imported_first_still_finds_its_catalog(module):
    """A notebook imports its experiment module before sparsenb.nb; the module's claim rules import
    sparsenb.nb, whose catalog must not need the half-imported module (NOTEBOOKS is built on first use)."""
    import subprocess
    import sys

    code = (f"from sparsenb.experiments import {module} as ex\n"
            "import sparsenb as snb\n"
            "assert len(snb.nb.catalog.NOTEBOOKS) >= 13 and ex.OURS\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
