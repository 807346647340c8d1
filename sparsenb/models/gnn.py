"""Graph neural networks of configurable depth and width for node classification.

``GNN(kind, in_dim, hidden, num_classes, layers=2)`` stacks ``layers`` message-passing layers
of PyTorch Geometric (ReLU between them, optional dropout before each):

- ``"gcn"``: ``GCNConv`` (Kipf & Welling 2017, ICLR, "Semi-Supervised Classification with Graph
  Convolutional Networks", Eq. 2: ``H' = D^-1/2 (A + I) D^-1/2 H W``).
- ``"gat"``: ``GATConv`` (Velickovic et al. 2018, ICLR, "Graph Attention Networks", Eqs. 1-4),
  ``heads`` heads concatenated in hidden layers (each of width ``hidden // heads``), one head on
  the output layer.
- ``"gin"``: ``GINConv`` with a two-layer MLP ``Linear-ReLU-Linear`` (Xu et al. 2019, ICLR, "How
  Powerful are Graph Neural Networks?", Eq. 4.1, eps = 0).

By default the layers have no bias, as in the UGTs code (Huang et al. 2022), so that a
:class:`sparsenb.layers.scores.Popup` over the model scores every parameter it has.

Shapes: ``forward(x, edge_index)`` with x float (N, in_dim), edge_index int64 (2, E)
-> logits float (N, num_classes). For GCN and GAT, whose first layer starts with a linear map,
``x`` may be a sparse CSR tensor (:func:`sparse_features`): bag-of-words features such as
Cora's are ~99 % zeros, and ``x @ W`` from CSR is ~10x faster on a CPU. Dropout then acts on
the stored values (the zeros stay zero either way).
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .._optional import require

__all__ = ["GNN", "KINDS", "sparse_features"]

KINDS = ("gcn", "gat", "gin")


class GNN(nn.Module):
    """``layers`` GCN / GAT / GIN layers: in_dim -> hidden -> ... -> hidden -> num_classes."""

    def __init__(self, kind: str, in_dim: int, hidden: int, num_classes: int, layers: int = 2,
                 heads: int = 1, dropout: float = 0.0, bias: bool = False):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown GNN kind {kind!r}; choose one of {KINDS}")
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        if kind == "gat" and hidden % heads:
            raise ValueError(f"GAT hidden width {hidden} must be divisible by heads={heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.kind, self.dropout, self.num_layers = kind, dropout, layers
        dims = [in_dim] + [hidden] * (layers - 1) + [num_classes]
        self.convs = nn.ModuleList(
            _conv(kind, dims[i], dims[i + 1], last=(i == layers - 1), heads=heads, bias=bias)
            for i in range(layers))

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        if x.layout == torch.sparse_csr and self.kind == "gin":
            raise ValueError("GIN aggregates raw features first: pass dense x, not sparse_features(x)")
        for i, conv in enumerate(self.convs):
            x = _dropout(x, self.dropout, self.training)
            x = conv(x, edge_index)
            if i < self.num_layers - 1:
                x = F.relu(x)
        return x


def sparse_features(x: torch.Tensor, max_density: float = 0.1) -> torch.Tensor:
    """``x`` as a sparse CSR tensor if at most ``max_density`` of it is nonzero, else ``x`` unchanged."""
    if x.layout == torch.strided and x.ndim == 2 and float((x != 0).float().mean()) <= max_density:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return x.to_sparse_csr()
    return x


def _dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    if not training or p == 0.0:
        return x
    if x.layout == torch.sparse_csr:
        return torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(), F.dropout(x.values(), p, True),
                                       x.shape, check_invariants=False)
    return F.dropout(x, p, True)


def _conv(kind: str, d_in: int, d_out: int, last: bool, heads: int, bias: bool) -> nn.Module:
    pyg = require("torch_geometric.nn", "gnn", "the GCN/GAT/GIN models")
    GATConv, GCNConv, GINConv = pyg.GATConv, pyg.GCNConv, pyg.GINConv

    if kind == "gcn":
        return GCNConv(d_in, d_out, bias=bias, cached=True)
    if kind == "gat":
        if last:
            return GATConv(d_in, d_out, heads=1, concat=False, bias=bias)
        return GATConv(d_in, d_out // heads, heads=heads, concat=True, bias=bias)
    mlp = nn.Sequential(nn.Linear(d_in, d_out, bias=bias), nn.ReLU(), nn.Linear(d_out, d_out, bias=bias))
    return GINConv(mlp, eps=0.0, train_eps=False)
