"""The continual-learning CNN of AFAF (Sokar, Mocanu, Pechenizkiy, ECML-PKDD 2022).

Three 3x3 convolutions without padding (64-128-256 channels), max pooling after the second and the
third, then two fully connected layers (2048-2048) and a linear classifier over all the classes of
the whole task sequence (a single head; the class-incremental setting):

    conv1 -> ReLU -> conv2 -> ReLU -> maxpool2 -> conv3 -> ReLU -> dropout -> maxpool2
          -> flatten -> fc1 -> ReLU -> dropout -> fc2 -> ReLU -> dropout -> out

``width`` scales every hidden layer (0.25 gives 16-32-64 and 512-512, for the cpu); the input
size only changes the flattened size (32x32 -> 6x6 after conv3 and pooling, 28x28 -> 5x5).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ContinualCNN"]


class ContinualCNN(nn.Module):
    """AFAF's CNN. ``forward(x)``: ``x`` (B, C, H, W) -> logits (B, num_classes).

    ``weight_layers`` lists the six weight layers in order (conv1, conv2, conv3, fc1, fc2, out);
    layer ``k`` connects neuron layer ``k`` (the input image's channels for ``k = 0``) to neuron
    layer ``k + 1``. ``neuron_counts`` gives the size of every neuron layer, input channels first,
    classes last. ``forward_hidden`` also returns the five hidden activations (post-ReLU) for
    measuring which neurons a class activates.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, image_size: int = 32, width: float = 1.0,
                 conv: tuple[int, ...] = (64, 128, 256), fc: tuple[int, ...] = (2048, 2048), dropout: float = 0.2):
        super().__init__()
        c1, c2, c3 = (max(1, int(round(c * width))) for c in conv)
        f1, f2 = (max(1, int(round(f * width))) for f in fc)
        self.conv1 = nn.Conv2d(in_channels, c1, 3)
        self.conv2 = nn.Conv2d(c1, c2, 3)
        self.conv3 = nn.Conv2d(c2, c3, 3)
        side = ((image_size - 4) // 2 - 2) // 2
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for three 3x3 convolutions and two poolings")
        self.spatial = side * side
        self.fc1 = nn.Linear(c3 * self.spatial, f1)
        self.fc2 = nn.Linear(f1, f2)
        self.out = nn.Linear(f2, num_classes)
        self.dropout = dropout
        self.num_classes = num_classes
        self.neuron_counts = [in_channels, c1, c2, c3, f1, f2, num_classes]

    @property
    def weight_layers(self) -> list[nn.Module]:
        return [self.conv1, self.conv2, self.conv3, self.fc1, self.fc2, self.out]

    def forward_hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(logits (B, classes), [conv1 (B,c1,h,w), conv2, conv3 (before pooling), fc1 (B,f1), fc2 (B,f2)])."""
        h1 = F.relu(self.conv1(x))
        h2 = F.relu(self.conv2(h1))
        h3 = F.relu(self.conv3(F.max_pool2d(h2, 2)))
        z = F.max_pool2d(F.dropout(h3, self.dropout, self.training), 2).flatten(1)
        h4 = F.relu(self.fc1(z))
        h5 = F.relu(self.fc2(F.dropout(h4, self.dropout, self.training)))
        logits = self.out(F.dropout(h5, self.dropout, self.training))
        return logits, [h1, h2, h3, h4, h5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_hidden(x)[0]
