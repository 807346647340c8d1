"""Tests for sparsenb.data.tabular: scikit-feature datasets (madelon, PCMAC, BASEHOCK, Yale).

Hand-computed scaling and label remapping; the real files come from the data
mirror or cache (``requires_data``: skipped when absent); a missing file and a bad
checksum give a clear DataError.
"""
import numpy as np
import pytest
import torch

from sparsenb import data
from sparsenb.data import tabular as data_tabular
from sparsenb.data.tabular import (PAPER_SCALING, SCIKIT_FEATURE, load_scikit_feature, minmax_scale, remap_labels,
                                   standardize)

needs_mirror = pytest.mark.requires_data("madelon", "PCMAC", "BASEHOCK", "Yale")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch, data_mirror):
    monkeypatch.setenv("SPARSENB_DATA_DIR", str(tmp_path / "cache"))
    if data_mirror:
        monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(data_mirror))
    else:
        monkeypatch.delenv("SPARSENB_DATA_MIRROR", raising=False)
    return tmp_path


def test_standardize_uses_train_statistics_only():
    X_train = np.array([[1.0, 5.0], [3.0, 5.0]])  # mean (2, 5), std (1, 0 -> 1)
    X_test = np.array([[4.0, 7.0]])
    tr, te = standardize(X_train, X_test)
    assert tr.tolist() == [[-1.0, 0.0], [1.0, 0.0]]
    assert te.tolist() == [[2.0, 2.0]]
    with pytest.raises(ValueError, match="same number of features"):
        standardize(X_train, np.zeros((1, 3)))


def test_minmax_scale_uses_train_min_and_max_only():
    X_train = np.array([[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]])  # min (1, 5), range (2, 0 -> 1)
    X_test = np.array([[4.0, 7.0], [0.0, 5.0]])
    tr, te = minmax_scale(X_train, X_test)
    assert tr.tolist() == [[0.0, 0.0], [1.0, 0.0], [0.5, 0.0]]
    assert te.tolist() == [[1.5, 2.0], [-0.5, 0.0]]  # test values are not clipped (as sklearn's MinMaxScaler)
    with pytest.raises(ValueError, match="minmax_scale needs 2-D arrays"):
        minmax_scale(X_train, np.zeros((1, 3)))


def test_paper_scaling_is_the_ctre_codes_choice():
    # zahraatashgahi/CTRE code/utils.py: StandardScaler on madelon, MinMaxScaler on every other set
    assert PAPER_SCALING == {"madelon": "standard", "PCMAC": "minmax", "BASEHOCK": "minmax", "Yale": "minmax"}
    assert set(PAPER_SCALING) == set(SCIKIT_FEATURE)


def test_unknown_scaling_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown scaling 'max'; choose one of"):
        load_scikit_feature("Yale", scaling="max")


@needs_mirror
def test_minmax_and_paper_scaling_on_the_real_files():
    mm = load_scikit_feature("Yale", scaling="minmax")
    lo, hi = mm.X_train.min(0).values, mm.X_train.max(0).values
    assert lo.abs().max() < 1e-6 and torch.all(((hi - 1).abs() < 1e-5) | (hi == 0))
    assert "min-max" in mm.source
    paper = load_scikit_feature("Yale", scaling="paper")
    assert torch.equal(paper.X_train, mm.X_train) and torch.equal(paper.X_test, mm.X_test)
    std = load_scikit_feature("Yale")  # the default is unchanged: standardised
    assert std.X_train.double().mean(0).abs().max() < 1e-4 and "standardised" in std.source
    assert torch.equal(std.y_train, mm.y_train)  # scaling does not change the split
    madelon = load_scikit_feature("madelon", scaling="paper")
    assert madelon.X_train.double().mean(0).abs().max() < 1e-4 and "standardised" in madelon.source


def test_remap_labels_to_zero_based_sorted_codes():
    codes, classes = remap_labels(np.array([[-1], [1], [1], [-1]]))
    assert codes.tolist() == [0, 1, 1, 0] and classes.tolist() == [-1, 1]
    codes, classes = remap_labels(np.array([3, 15, 1]))
    assert codes.tolist() == [1, 2, 0] and codes.dtype == np.int64


def test_registered_with_descriptions():
    names = data.available()
    for name in ("madelon", "PCMAC", "BASEHOCK", "Yale"):
        assert name in names and names[name]


def test_unknown_name_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSENB_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(data.registry, "DOWNLOAD_TIMEOUT", 0.01)
    with pytest.raises(data.DataError, match=r"'madelonn'(.|\n)*pinned here: \['BASEHOCK', 'PCMAC', 'Yale', 'madelon'\]"):
        load_scikit_feature("madelonn")


@needs_mirror
@pytest.mark.parametrize("name, n_train, n_test, dim, classes", [
    ("madelon", 2000, 600, 500, 2), ("PCMAC", 1554, 389, 3289, 2),
    ("BASEHOCK", 1594, 399, 4862, 2), ("Yale", 132, 33, 1024, 15)])
def test_shapes_labels_and_scaling(name, n_train, n_test, dim, classes):
    d = data.load(name)
    assert d.X_train.shape == (n_train, dim) and d.X_test.shape == (n_test, dim)
    assert d.num_classes == classes and d.input_shape == (dim,)
    assert d.y_train.dtype == torch.int64 and set(d.y_train.unique().tolist()) == set(range(classes))
    assert set(d.y_test.unique().tolist()) == set(range(classes))
    mean, std = d.X_train.double().mean(0), d.X_train.double().std(0, unbiased=False)
    assert mean.abs().max() < 1e-4
    assert torch.all(((std - 1).abs() < 1e-3) | (std == 0))  # constant features stay 0
    assert torch.isfinite(d.X_test).all()


@needs_mirror
def test_madelon_uses_the_uci_train_valid_split():
    d = data.load("madelon")
    assert d.y_train.bincount().tolist() == [1000, 1000]  # UCI train
    assert d.y_test.bincount().tolist() == [300, 300]     # UCI valid


@needs_mirror
def test_stratified_split_is_deterministic():
    a, b = data.load("Yale"), data.load("Yale")
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_test, b.y_test)
    # stratified: 11 faces per person -> 2 or 3 of each of the 15 people in the test split
    assert set(a.y_test.bincount().tolist()) <= {2, 3}


def test_missing_file_names_it_and_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(tmp_path / "empty_mirror"))
    monkeypatch.setattr(data_tabular, "SCIKIT_FEATURE_URL", "http://127.0.0.1:9/{name}.mat")
    with pytest.raises(data.DataError, match=r"(?s)scikit-feature/PCMAC\.mat.*To fix: set SPARSENB_DATA_MIRROR"):
        load_scikit_feature("PCMAC")


def test_bad_checksum_in_mirror_is_refused(monkeypatch, tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "scikit-feature").mkdir(parents=True)
    (mirror / "scikit-feature" / "Yale.mat").write_bytes(b"not the Yale file")
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(mirror))
    monkeypatch.setattr(data_tabular, "SCIKIT_FEATURE_URL", "http://127.0.0.1:9/{name}.mat")
    with pytest.raises(data.DataError, match="bad sha256"):
        load_scikit_feature("Yale")
    assert SCIKIT_FEATURE["Yale"][0].startswith("cccd29ab")


def _write_mat(path, n=60, d=7, classes=3, seed=0):
    import scipy.io
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Y = (np.arange(n) % classes + 1).reshape(-1, 1)
    scipy.io.savemat(path, {"X": X, "Y": Y})
    return X, Y


def test_any_scikit_feature_name_loads_from_the_mirror_and_checks_its_sha256sums(tmp_path, monkeypatch):
    import hashlib
    mirror = tmp_path / "mirror"
    (mirror / "scikit-feature").mkdir(parents=True)
    _write_mat(mirror / "scikit-feature" / "tinyset.mat")
    digest = hashlib.sha256((mirror / "scikit-feature" / "tinyset.mat").read_bytes()).hexdigest()
    (mirror / "SHA256SUMS").write_text(f"{digest}  ./scikit-feature/tinyset.mat\n")
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("SPARSENB_DATA_DIR", str(tmp_path / "cache"))
    d = data.load("scikit-feature:tinyset")
    assert d.name == "scikit-feature:tinyset" and d.X_train.shape == (48, 7) and d.num_classes == 3
    assert d.sha256 == digest and "sha256 " + digest in d.source
    # a wrong entry in SHA256SUMS is caught
    (tmp_path / "cache" / "scikit-feature" / "tinyset.mat").unlink()
    (mirror / "SHA256SUMS").write_text("0" * 64 + "  ./scikit-feature/tinyset.mat\n")
    with pytest.raises(data.DataError, match="sha256"):
        data.load("scikit-feature:tinyset")


def test_unlisted_scikit_feature_file_prints_its_sha256_and_unknown_names_fail_clearly(tmp_path, monkeypatch, capsys):
    mirror = tmp_path / "mirror"
    (mirror / "scikit-feature").mkdir(parents=True)
    _write_mat(mirror / "scikit-feature" / "other.mat")
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("SPARSENB_DATA_DIR", str(tmp_path / "cache"))
    d = data.load("scikit-feature:other")
    assert len(d.sha256) == 64 and d.sha256 in capsys.readouterr().out
    monkeypatch.setattr(data.registry, "DOWNLOAD_TIMEOUT", 0.01)
    with pytest.raises(data.DataError, match="could not obtain scikit-feature/nosuchset.mat"):
        data.load("scikit-feature:nosuchset")
    with pytest.raises(ValueError, match="without extension"):
        data.load("scikit-feature:lung.mat")


def test_user_file_by_path_mat_and_npz(tmp_path, capsys):
    X, Y = _write_mat(tmp_path / "mine.mat", n=40, d=5, classes=2)
    d = data.load(f"file:{tmp_path / 'mine.mat'}")
    import hashlib
    digest = hashlib.sha256((tmp_path / "mine.mat").read_bytes()).hexdigest()
    assert d.sha256 == digest and digest in capsys.readouterr().out
    assert d.name == f"file:{tmp_path / 'mine.mat'}" and d.X_train.shape == (32, 5) and d.num_classes == 2
    np.savez(tmp_path / "mine.npz", X_train=np.ones((6, 2, 3)), y_train=np.array([5, 7, 5, 7, 5, 7]),
             X_test=np.zeros((2, 2, 3)), y_test=np.array([7, 5]))
    e = data.load(f"file:{tmp_path / 'mine.npz'}")
    assert e.input_shape == (2, 3) and e.y_train.tolist() == [0, 1, 0, 1, 0, 1] and e.y_test.tolist() == [1, 0]
    with pytest.raises(data.DataError, match="no such file"):
        data.load(f"file:{tmp_path / 'missing.mat'}")
    (tmp_path / "x.csv").write_text("1,2\n")
    with pytest.raises(ValueError, match="unsupported kind '.csv'"):
        data.load(f"file:{tmp_path / 'x.csv'}")
    import scipy.io
    scipy.io.savemat(tmp_path / "bad.mat", {"A": np.ones((2, 2))})
    with pytest.raises(ValueError, match="needs the keys 'X'"):
        data.load(f"file:{tmp_path / 'bad.mat'}")
