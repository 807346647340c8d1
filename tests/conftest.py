"""Shared test helpers: one rule for tests that need a downloaded dataset.

A test that needs files that are not embedded in a package declares them:

    @pytest.mark.requires_data("madelon", "Yale")
    def test_...(): ...

or, inside a fixture, calls ``require_data("cora")``. The dataset is reachable when its file
is in the data cache (:func:`sparsenb.data.data_dir`) or in ``$SPARSENB_DATA_MIRROR`` as it was
when the session started. Otherwise the test is **skipped** with the reason, or **fails** when
``SPARSENB_REQUIRE_DATA=1`` (CI sets it: there the mirror is present, so a skip would hide a
test that silently stopped running). The network is never tried: offline runs stay fast.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# One file per dataset that needs one (path inside the cache / mirror); every other dataset
# (digits, mnist1d, the sktime-bundled ucr:* sets) is embedded in an installed package.
DATA_FILES = {
    "mnist5k": "mnist/t10k-images-idx3-ubyte.gz",       # the 5k train images are embedded; the test set is not
    "mnist": "mnist/train-images-idx3-ubyte.gz",
    "cifar10-jpeg": "cifar10-jpeg/cifar10_jpeg_train10k.npz",
    "madelon": "scikit-feature/madelon.mat",
    "Yale": "scikit-feature/Yale.mat",
    "PCMAC": "scikit-feature/PCMAC.mat",
    "BASEHOCK": "scikit-feature/BASEHOCK.mat",
    "cora": "planetoid/ind.cora.x",
    "citeseer": "planetoid/ind.citeseer.x",
    "pubmed": "planetoid/ind.pubmed.x",
}
MIRROR = Path(os.environ["SPARSENB_DATA_MIRROR"]) if os.environ.get("SPARSENB_DATA_MIRROR") else None
REQUIRE_ENV = "SPARSENB_REQUIRE_DATA"


def _cache() -> Path:
    from sparsenb.data import data_dir

    return data_dir()


CACHE = _cache()  # as the session started: some tests point SPARSENB_DATA_DIR at a temporary folder


def needs_files(names) -> list[str]:
    """The datasets among ``names`` that need a downloaded file (the others are embedded)."""
    return [n for n in names if n in DATA_FILES]


def data_folder(*names: str) -> Path | None:
    """A folder laid out like the mirror (the mirror, or else the cache) holding every file of ``names``."""
    unknown = [n for n in names if n not in DATA_FILES]
    if unknown:
        raise ValueError(f"requires_data: no file known for {unknown}; add it to DATA_FILES in tests/conftest.py "
                         f"(embedded datasets need no marker)")
    for place in [p for p in (MIRROR, CACHE) if p]:
        if all((place / DATA_FILES[n]).exists() for n in names):
            return place
    return None


def missing_data(*names: str) -> str | None:
    """Why the datasets ``names`` cannot be used offline here, or None if they all can."""
    if data_folder(*names) is not None:
        return None
    missing = [n for n in names if data_folder(n) is None]
    return (f"dataset {', '.join(missing)} not reachable offline: "
            f"{', '.join(DATA_FILES[n] for n in missing)} is in neither the cache {CACHE} nor "
            + (f"the mirror {MIRROR}" if MIRROR else "a mirror (SPARSENB_DATA_MIRROR is not set)"))


def require_data(*names: str) -> None:
    """Skip the current test if a dataset is unreachable; fail instead when SPARSENB_REQUIRE_DATA=1."""
    reason = missing_data(*names)
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1: missing data is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def pytest_configure(config):
    config.addinivalue_line("markers", "requires_data(*names): the test needs these downloaded datasets "
                                       "(skipped if unreachable; a failure when SPARSENB_REQUIRE_DATA=1)")


def pytest_runtest_setup(item):
    for marker in item.iter_markers("requires_data"):
        require_data(*marker.args)


@pytest.fixture
def data_mirror(request) -> Path | None:
    """The folder to use as SPARSENB_DATA_MIRROR for this test's ``requires_data`` datasets (None without a marker)."""
    names = [n for m in request.node.iter_markers("requires_data") for n in m.args]
    return data_folder(*names) if names else None


def load_benchmark(name: str):
    """The module of ``benchmarks/<name>.py`` (a script folder, not a package)."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_bench", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@pytest.fixture
def quick_benchmark(tmp_path):
    """Run ``benchmarks/<name>.py --quick`` into a temporary folder and check what every benchmark record
    holds: the JSON written (atomically, no temp file left) equals the returned dict, with the date,
    versions, machine, load and settings. Returns the record for the test's own checks."""
    import json

    def run(name: str, threads: int = 1) -> dict:
        bench = load_benchmark(name)
        out = tmp_path / "sub" / f"{name}.json"
        returned = bench.main(["--quick", "--out", str(out), "--threads", str(threads)])
        data = json.loads(out.read_text())
        assert data == json.loads(json.dumps(returned))
        assert sorted(p.name for p in out.parent.iterdir()) == [f"{name}.json"]  # no temp or progress file left
        for key in ("date", "torch", "threads", "cpu_model", "settings", "targets", "results", "load_avg_at_start",
                    "max_load_avg", "machine_busy"):
            assert key in data, key
        assert data["threads"] == threads and data["settings"]["quick"] is True
        return data

    return run
