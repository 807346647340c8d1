import pytest
import torch

from sparsenb import data

needs_mirror = pytest.mark.requires_data("cifar10-jpeg")


@needs_mirror
def test_cifar10_jpeg_shapes_balance_and_standardisation(tmp_path, monkeypatch, data_mirror):
    monkeypatch.setenv("SPARSENB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(data_mirror))
    d = data.load("cifar10-jpeg")
    assert d.X_train.shape == (10000, 3, 32, 32) and d.X_test.shape == (10000, 3, 32, 32)
    assert torch.equal(torch.bincount(d.y_train), torch.full((10,), 1000))
    assert d.X_train.mean((0, 2, 3)).abs().max() < 0.01
    assert (d.X_train.std((0, 2, 3)) - 1).abs().max() < 0.01
    assert "sha256" in d.source


def test_cifar10_jpeg_is_listed():
    assert "cifar10-jpeg" in data.available()
