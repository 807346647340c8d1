"""The paper architectures.

* :mod:`.classic`: MLP, LeNet-300-100, LeNet-5, small VGG and ResNet, and :func:`build` by name.
* :mod:`.convnext`: a small ConvNeXt with (SLaK) large-kernel depth-wise convolutions.
* :mod:`.dsn`: DSN's 1-D CNN with windowed convolutions (Xiao et al. 2022).
* :mod:`.gnn`: GCN / GAT / GIN node classifiers (needs the ``gnn`` extra, torch_geometric).
* :mod:`.patchnet`: the signal-noise patch data model and two-layer network (Cao et al. 2022).
"""
from .classic import MLP, MODELS, LeNet5, ResNetSmall, VGGSmall, build, lenet_300_100

__all__ = ["MLP", "lenet_300_100", "LeNet5", "VGGSmall", "ResNetSmall", "build", "MODELS"]
