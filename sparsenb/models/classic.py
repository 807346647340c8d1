"""Paper architectures used by the notebooks.

All models take the tensors of :mod:`sparsenb.data` as they come, e.g.
``(N, 1, 28, 28)`` images, and flatten where the paper's model is an MLP.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["MLP", "lenet_300_100", "LeNet5", "VGGSmall", "ResNetSmall", "build", "MODELS"]


class MLP(nn.Sequential):
    """Fully connected net: ``in -> hidden[0] -> ... -> out`` with an activation between layers.

    Input ``(N, *input_shape)`` is flattened to ``(N, in_features)``; output ``(N, out)`` logits.
    """

    def __init__(self, in_features: int, hidden: Sequence[int], out_features: int,
                 activation: type[nn.Module] = nn.ReLU):
        layers: list[nn.Module] = [nn.Flatten()]
        widths = [in_features, *hidden]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), activation()]
        layers.append(nn.Linear(widths[-1], out_features))
        super().__init__(*layers)


def lenet_300_100(in_features: int = 784, num_classes: int = 10) -> MLP:
    """LeNet-300-100 (LeCun et al. 1998): 784-300-100-10, ReLU; 266,200 weights."""
    return MLP(in_features, (300, 100), num_classes)


class LeNet5(nn.Module):
    """LeNet-5 variant of the lottery-ticket/SNIP papers: conv(20,5x5)-pool-conv(50,5x5)-pool-fc500-fc10.

    Input ``(N, 1, 28, 28)``; output ``(N, num_classes)`` logits.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
        )
        side = ((image_size - 4) // 2 - 4) // 2
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(50 * side * side, 500), nn.ReLU(), nn.Linear(500, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class VGGSmall(nn.Module):
    """A VGG-style CNN with batch norm for 32x32 (or 28x28) images, in the spirit of VGG-16 on CIFAR.

    ``stages`` lists the channels of each 3x3-conv stage (``convs_per_stage`` convs, each
    conv -> BN -> ReLU), each stage ending in a 2x2 max-pool; then global average pooling and
    one linear classifier. Input ``(N, C, H, W)``; output ``(N, num_classes)`` logits.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, stages: Sequence[int] = (32, 64, 128),
                 convs_per_stage: int = 2):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for width in stages:
            for _ in range(convs_per_stage):
                layers += [nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
                c = width
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class _BasicBlock(nn.Module):
    """ResNet basic block: conv3x3-BN-ReLU-conv3x3-BN plus the (1x1-conv projected) shortcut, ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNetSmall(nn.Module):
    """CIFAR ResNet (He et al. 2016, Sec. 4.2): a 3x3 stem, three stages of ``blocks`` basic blocks
    with ``width``, ``2 width``, ``4 width`` channels (stride 2 between stages), global average
    pooling, one linear layer. ``blocks=3, width=16`` is ResNet-20; ``blocks=1`` is ResNet-8.
    Input ``(N, C, H, W)``; output ``(N, num_classes)`` logits.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 16, blocks: int = 1):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU())
        stages: list[nn.Module] = []
        c = width
        for i, w in enumerate((width, 2 * width, 4 * width)):
            for b in range(blocks):
                stages.append(_BasicBlock(c, w, stride=2 if (i > 0 and b == 0) else 1))
                c = w
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


MODELS = {"lenet300": lenet_300_100, "lenet5": LeNet5, "mlp": MLP, "vgg_small": VGGSmall, "resnet_small": ResNetSmall}


def build(name: str, input_shape: Sequence[int], num_classes: int, **kwargs) -> nn.Module:
    """Build a registered model for data of ``input_shape`` (one example) and ``num_classes``.

    The convolutional models (``lenet5``, ``vgg_small``, ``resnet_small``) need images, ``(C, H, W)``;
    other data (e.g. 1-D signals ``(1, L)``, tabular ``(F,)``) raises a ``ValueError`` naming the MLPs.
    """
    in_features = int(torch.tensor(input_shape).prod())
    if name in ("lenet5", "vgg_small", "resnet_small") and len(input_shape) != 3:
        raise ValueError(f"model {name!r} is convolutional and needs images (channels, height, width); this data's "
                         f"examples have shape {tuple(input_shape)}: choose an image dataset, or MODEL='mlp' / 'lenet300'")
    if name == "lenet300":
        return lenet_300_100(in_features, num_classes)
    if name == "lenet5":
        return LeNet5(input_shape[0], num_classes, image_size=input_shape[-1])
    if name == "mlp":
        return MLP(in_features, kwargs.pop("hidden", (256, 256)), num_classes, **kwargs)
    if name == "vgg_small":
        return VGGSmall(input_shape[0], num_classes, **kwargs)
    if name == "resnet_small":
        return ResNetSmall(input_shape[0], num_classes, **kwargs)
    raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
