import os

import pytest
import torch

from sparsenb import data

needs_mirror = pytest.mark.skipif(
    not os.environ.get("SPARSENB_DATA_MIRROR")
    or not os.path.exists(os.path.join(os.environ["SPARSENB_DATA_MIRROR"], "cifar10-jpeg")),
    reason="cifar10-jpeg needs SPARSENB_DATA_MIRROR (or the network)")


@needs_mirror
def test_cifar10_jpeg_shapes_balance_and_standardisation(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSENB_DATA_DIR", str(tmp_path))
    d = data.load("cifar10-jpeg")
    assert d.X_train.shape == (10000, 3, 32, 32) and d.X_test.shape == (10000, 3, 32, 32)
    assert torch.equal(torch.bincount(d.y_train), torch.full((10,), 1000))
    assert d.X_train.mean((0, 2, 3)).abs().max() < 0.01
    assert (d.X_train.std((0, 2, 3)) - 1).abs().max() < 0.01
    assert "sha256" in d.source


def test_cifar10_jpeg_is_listed():
    assert "cifar10-jpeg" in data.available()
