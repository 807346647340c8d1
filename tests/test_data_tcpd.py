"""TCPD loader (sparsenb.data.tcpd): real mirror files, md5 check, the 10 series not shipped, names."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from sparsenb.data import registry as data
from sparsenb.data import DataError
from sparsenb.data.tcpd import NOT_IN_MIRROR, TCPD_MD5, load_tcpd, tcpd_names

MIRROR = Path(os.environ.get("SPARSENB_DATA_MIRROR", "/work/shared/data"))
needs_mirror = pytest.mark.skipif(not (MIRROR / "tcpd" / "annotations.json").exists(),
                                  reason="TCPD mirror not available")


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Empty cache; downloads fail at once (no network in tests)."""
    monkeypatch.setenv("SPARSENB_DATA_DIR", str(tmp_path / "cache"))

    def no_network(url, tmp, label):
        raise OSError("network disabled in tests")
    monkeypatch.setattr(data, "_download", no_network)
    return tmp_path


def test_names():
    assert len(tcpd_names()) == 42 and len(TCPD_MD5) == 42
    assert len(tcpd_names(in_mirror_only=True)) == 32
    assert set(NOT_IN_MIRROR) <= set(tcpd_names())


@needs_mirror
def test_load_nile_and_registry(offline, monkeypatch):
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(MIRROR))
    s = load_tcpd("nile")
    assert (s.n_obs, s.n_dim, s.n_missing) == (100, 1, 0)
    assert s.annotations == {"6": [], "7": [28], "8": [], "12": [28], "13": [28]}
    assert s.values[0, 0] == 1120.0  # first Nile volume (1871)
    assert data.load("tcpd:nile").n_obs == 100
    assert "tcpd:*" in data.available()


@needs_mirror
def test_missing_values_are_nan(offline, monkeypatch):
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(MIRROR))
    s = load_tcpd("uk_coal_employ")
    assert s.n_missing == 2 and np.isnan(s.values).sum() == 2


@needs_mirror
def test_bad_md5_in_mirror_is_a_clear_error(offline, monkeypatch):
    fake = offline / "mirror" / "tcpd"
    (fake / "datasets" / "nile").mkdir(parents=True)
    shutil.copy(MIRROR / "tcpd" / "annotations.json", fake / "annotations.json")
    raw = json.loads((MIRROR / "tcpd" / "datasets" / "nile" / "nile.json").read_text())
    raw["series"][0]["raw"][0] = 0.0  # tampered value
    (fake / "datasets" / "nile" / "nile.json").write_text(json.dumps(raw))
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(offline / "mirror"))
    with pytest.raises(DataError, match=r"bad md5 checksum for nile\.json.*expected 5b08800e"):
        load_tcpd("nile")


def test_series_not_in_mirror_names_itself_and_the_fix(offline, monkeypatch):
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(offline / "empty_mirror"))
    with pytest.raises(DataError) as e:
        load_tcpd("occupancy")
    msg = str(e.value)
    assert "'occupancy' is not in the data mirror" in msg and "download scripts" in msg
    assert "SPARSENB_DATA_MIRROR" in msg and "nile" in msg  # lists what is available


def test_unknown_series():
    with pytest.raises(ValueError, match="unknown TCPD series 'nil'"):
        load_tcpd("nil")
