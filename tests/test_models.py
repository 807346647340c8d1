"""The paper architectures: shapes, parameter counts, and that the masks find their layers."""
import pytest
import torch

from sparsenb import models, sparsify


def test_resnet_small_is_resnet20_at_three_blocks():
    # ResNet-20 (He et al. 2016) on CIFAR has about 0.27 M parameters
    m = models.build("resnet_small", (3, 32, 32), 10, width=16, blocks=3)
    n = sum(p.numel() for p in m.parameters())
    assert 0.26e6 < n < 0.28e6, n
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_vgg_small_takes_one_channel_28px_and_three_channel_32px():
    assert models.build("vgg_small", (1, 28, 28), 10)(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert models.build("vgg_small", (3, 32, 32), 7, stages=(8, 16))(torch.randn(3, 3, 32, 32)).shape == (3, 7)


def test_cifar_nets_are_maskable_and_stay_exactly_sparse():
    torch.manual_seed(0)
    m = models.build("resnet_small", (3, 32, 32), 10, width=8)
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    masks = sparsify(m, sparsity=0.8, distribution="erk", optimizer=opt)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(x), y).backward()
        opt.step()
    for mp in masks:
        assert torch.all(mp.param[~mp.mask] == 0)
    assert abs(masks.density() - 0.2) < 1e-3


@pytest.mark.parametrize("name", ["lenet5", "vgg_small", "resnet_small"])
def test_a_conv_model_refuses_data_that_is_not_images(name):
    with pytest.raises(ValueError, match="needs images.*MODEL='mlp'"):
        models.build(name, (1, 40), 10)  # mnist1d's 1-D signals
    assert models.build("mlp", (1, 40), 10)(torch.randn(2, 1, 40).flatten(1)).shape == (2, 10)
