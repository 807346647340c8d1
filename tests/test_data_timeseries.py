"""Tests for sparsenb.data.timeseries: the ``ucr:<Name>`` family (sktime's bundled UCR/UEA sets, offline)."""
import numpy as np
import pytest
import torch

from sparsenb import data
from sparsenb.data.timeseries import BUNDLED, encode_labels, load_ucr, znormalize


def test_family_and_aliases_are_listed():
    names = data.available()
    assert "ucr:*" in names
    assert {"gunpoint", "italypowerdemand", "basicmotions"} <= set(names)
    assert {"GunPoint", "ItalyPowerDemand", "BasicMotions"} <= set(BUNDLED)


def test_gunpoint_shapes_labels_and_z_normalisation():
    d = data.load("ucr:GunPoint")
    assert d.name == "ucr:GunPoint" and d.input_shape == (1, 150) and d.num_classes == 2
    assert d.X_train.shape == (50, 1, 150) and d.X_test.shape == (150, 1, 150)
    assert d.X_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert set(d.y_train.tolist()) == {0, 1} and set(d.y_test.tolist()) == {0, 1}
    for X in (d.X_train, d.X_test):
        assert X.mean(-1).abs().max() < 1e-5
        assert (X.std(-1, unbiased=False) - 1).abs().max() < 1e-4
    assert "GunPoint" in d.source and "official train/test split" in d.source


def test_italy_power_demand_split_sizes_and_alias():
    d = data.load("italypowerdemand")
    assert d.X_train.shape == (67, 1, 24) and d.X_test.shape == (1029, 1, 24)
    assert d.name == "ucr:ItalyPowerDemand"


def test_multivariate_basic_motions_channels_and_classes():
    d = data.load("ucr:BasicMotions")
    assert d.input_shape == (6, 100) and d.num_classes == 4
    assert torch.equal(torch.bincount(d.y_train), torch.tensor([10, 10, 10, 10]))
    assert (d.X_train.std(-1, unbiased=False) - 1).abs().max() < 1e-3  # per series and channel


def test_normalize_none_keeps_sktime_values():
    from sktime.datasets import load_UCR_UEA_dataset

    raw, _ = load_UCR_UEA_dataset("ItalyPowerDemand", split="train", return_type="numpy3D")
    d = load_ucr("ItalyPowerDemand", normalize="none")
    assert np.allclose(d.X_train.numpy(), raw.astype(np.float32))
    with pytest.raises(ValueError, match="normalize"):
        load_ucr("ItalyPowerDemand", normalize="minmax")


def test_znormalize_hand_computed_and_constant_series():
    X = np.array([[[1.0, 2.0, 3.0]], [[5.0, 5.0, 5.0]]])
    Z = znormalize(X)
    s = np.sqrt(2.0 / 3.0)
    assert np.allclose(Z[0, 0], [-1 / s, 0.0, 1 / s])
    assert np.allclose(Z[1, 0], 0.0)  # a constant series is only centred


def test_encode_labels_numeric_then_string_order():
    ytr, yte, classes = encode_labels(np.array(["10", "2", "2", "1"]), np.array(["1", "10"]))
    assert classes == ["1", "2", "10"]
    assert ytr.tolist() == [2, 1, 1, 0] and yte.tolist() == [0, 2]
    ytr, _, classes = encode_labels(np.array(["walking", "badminton"]), np.array(["walking"]))
    assert classes == ["badminton", "walking"] and ytr.tolist() == [1, 0]
    with pytest.raises(ValueError, match="do not occur in the training split"):
        encode_labels(np.array(["a", "b"]), np.array(["c"]))


def test_unequal_length_multivariate_set_is_zero_padded_at_the_end():
    if "JapaneseVowels" not in BUNDLED:
        pytest.skip("JapaneseVowels is not bundled with this sktime")
    d = data.load("ucr:JapaneseVowels")  # 12 channels, 7..29 steps per series
    assert d.X_train.shape == (270, 12, 29) and d.X_test.shape == (370, 12, 29)
    assert "zero-padded at the end" in d.source and d.num_classes == 9
    # the first training series is shorter than 29: its tail is exactly 0, its observed part z-normalised
    from sktime.datasets import load_UCR_UEA_dataset
    raw, _ = load_UCR_UEA_dataset("JapaneseVowels", split="train", return_type="nested_univ")
    n = len(raw.iloc[0, 0])
    assert n < 29 and bool((d.X_train[0, :, n:] == 0).all())
    x = np.stack([np.asarray(raw.iloc[0, c], dtype=np.float64) for c in range(12)])
    expected = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
    np.testing.assert_allclose(d.X_train[0, :, :n].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_pad_series_hand_computed():
    from sparsenb.data.timeseries import pad_series
    out = pad_series([np.array([[1.0, 2.0]]), np.array([[3.0, 4.0, 5.0]])], 4)
    assert out.tolist() == [[[1, 2, 0, 0]], [[3, 4, 5, 0]]]


def test_unknown_set_offline_raises_data_error_naming_the_fix(tmp_path, monkeypatch):
    import sktime.datasets._data_io as io

    def no_network(*args, **kwargs):
        raise RuntimeError("no network")

    monkeypatch.setattr(io, "_cache_dataset", no_network)
    monkeypatch.setenv("SPARSENB_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SPARSENB_DATA_MIRROR", raising=False)
    with pytest.raises(data.DataError) as err:
        data.load("ucr:NoSuchSetXYZ")
    msg = str(err.value)
    assert "NoSuchSetXYZ" in msg and "GunPoint" in msg and "SPARSENB_DATA_MIRROR/ucr/NoSuchSetXYZ" in msg
    with pytest.raises(ValueError, match="give a set name"):
        data.load("ucr:")


def test_set_from_the_mirror_folder(tmp_path, monkeypatch):
    # a mirror laid out like the archive: <mirror>/ucr/<Name>/<Name>_{TRAIN,TEST}.ts
    import shutil
    import sktime.datasets as skd
    from pathlib import Path

    src = Path(skd.__file__).parent / "data" / "GunPoint"
    dest = tmp_path / "ucr" / "MirrorPoint"
    dest.mkdir(parents=True)
    for split in ("TRAIN", "TEST"):
        text = (src / f"GunPoint_{split}.ts").read_text().replace("@problemName GunPoint", "@problemName MirrorPoint")
        (dest / f"MirrorPoint_{split}.ts").write_text(text)
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(tmp_path))
    d = data.load("ucr:MirrorPoint")
    ref = data.load("ucr:GunPoint")
    assert torch.equal(d.X_train, ref.X_train) and torch.equal(d.y_test, ref.y_test)
    assert "mirror" in d.source
    shutil.rmtree(dest)
