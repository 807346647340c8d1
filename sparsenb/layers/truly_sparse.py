"""Truly sparse MLP layers: only the nonzero connections are stored and computed.

Curci, Mocanu, Pechenizkiy (2021), "Truly Sparse Neural Networks at Scale",
arXiv:2102.01732. The paper trains MLPs whose weight matrices are sparse data
structures from start to end (no dense weight, no binary mask), evolves their
topology with SET (Mocanu et al. 2018, Nat. Commun. 9:2383), uses the All-ReLU
activation and prunes unimportant hidden neurons during training. This module
provides those four pieces for PyTorch:

* :class:`TrulySparseLinear`: ``y = x W^T + b`` with ``W`` stored as its
  ``nnz`` values and their (row, col) positions. Memory and compute are
  O(nnz + batch * (n_in + n_out)); a dense ``n_out x n_in`` tensor is never
  built in forward or backward (only :meth:`TrulySparseLinear.to_dense` does).
* :func:`evolve_set`: SET's drop/grow step on the sparse structure, with the
  optimizer state (momentum, Adam moments) pruned and extended in step.
* :class:`AllReLU`: the paper's activation with alternating negative slopes.
* :func:`importance_prune`: remove all incoming connections of the hidden
  neurons with the lowest importance (sum of absolute incoming weights).
* :class:`TrulySparseMLP`: an MLP of truly sparse layers with ER densities.

Storage convention
------------------
``W`` has ``nn.Linear``'s shape ``(out_features, in_features)``. Connection
``k`` is ``W[rows[k], cols[k]] = values[k]``. The connections are kept sorted
row-major by ``(row, col)`` and unique, i.e. the *linear index*
``rows * in_features + cols`` is strictly increasing. This is exactly the order
of the CSR format, so a CSR tensor is a zero-copy view of ``values``.

How the products are computed (CPU measurements in the issue note): forward
``y^T = W x^T`` and the input gradient ``grad_x^T = W^T grad_y^T`` are sparse
(CSR) x dense products (MKL on CPU, cuSPARSE on CUDA); the value gradient
``grad_values[k] = sum_n grad_y[n, rows[k]] * x[n, cols[k]]`` is a *sampled*
dense-dense product (SDDMM, ``torch.sparse.sampled_addmm``), evaluated at the
nonzeros only.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from typing import Sequence

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from ..core.dropgrow import set_drop
from .dropout import FastDropout
from .transpose import transposed_copy

__all__ = [
    "TrulySparseLinear", "TrulySparseMLP", "AllReLU", "evolve_set", "importance_prune",
    "neuron_importance", "should_prune", "er_density", "sample_positions", "TRULY_SPARSE_INITS", "er_layer_nnz",
    "remove_neurons", "regrow_alive", "importance_prune_alive", "active_neurons",
]

# dense-scale inits ("linear": nn.Linear's range, "he_uniform": the authors' code) and sparse-aware ones
TRULY_SPARSE_INITS = ("linear", "he_uniform", "sparse_he", "sparse_glorot")

# PyTorch warns once per process that CSR support is "beta"; the operations used
# here (CSR @ dense, sampled_addmm) are tested against dense results in
# tests/test_truly_sparse.py, so the warning is only noise for users.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


# ----------------------------------------------------------------- densities
def er_density(in_features: int, out_features: int, epsilon: float) -> float:
    """Erdős–Rényi density of a layer (Mocanu et al. 2018), capped at 1.

    ``p = epsilon * (n_in + n_out) / (n_in * n_out)``: the expected number of
    connections is ``epsilon * (n_in + n_out)``, linear in the number of neurons.
    """
    if epsilon <= 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    return min(1.0, epsilon * (in_features + out_features) / (in_features * out_features))


def _resolve_nnz(in_features: int, out_features: int, density: float | None, epsilon: float | None) -> int:
    """Exact integer nnz: ``round(density * n_in * n_out)``, density from ``epsilon`` if given."""
    if (density is None) == (epsilon is None):
        raise ValueError("give exactly one of density= or epsilon=")
    numel = in_features * out_features
    if epsilon is not None:
        # p * numel = eps * (n_in + n_out): computed directly, free of float error on huge layers
        if er_density(in_features, out_features, epsilon) >= 1.0:
            return numel
        return round(epsilon * (in_features + out_features))
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    return round(density * numel)


# ------------------------------------------------------------------ sampling
def _contains(sorted_ref: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Bool mask ``query[i] in sorted_ref`` by binary search (``sorted_ref`` sorted 1-D)."""
    if sorted_ref.numel() == 0 or query.numel() == 0:
        return torch.zeros(query.shape, dtype=torch.bool, device=query.device)
    pos = torch.searchsorted(sorted_ref, query).clamp_(max=sorted_ref.numel() - 1)
    return sorted_ref[pos] == query


@torch.no_grad()
def sample_positions(total: int, k: int, exclude: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """``k`` distinct linear indices drawn uniformly from ``[0, total)`` minus ``exclude``.

    Never builds a ``total``-sized tensor unless ``total = O(len(exclude) + k)``:

    * sparse case (``total > 4 * (len(exclude) + k)``, so >= 3/4 of the range is
      free): draw batches of ``torch.randint`` candidates, reject excluded ones
      by binary search, deduplicate with ``torch.unique``, repeat until at least
      ``k`` distinct candidates exist, then keep a uniformly random ``k`` of
      them. The set of distinct accepted candidates is exchangeable over the
      free positions, so the result is a uniform ``k``-subset. O(k log k).
    * dense case: enumerate the free positions (O(total) = O(len(exclude) + k))
      and take a random permutation's first ``k``.

    Args:
        total: size of the index range, e.g. ``n_in * n_out``.
        k: number of positions to draw.
        exclude: sorted, unique int64 indices that must not be drawn (shape ``(m,)``).
        generator: random generator; sampling runs on its device (CPU if ``None``).

    Returns:
        int64 tensor of shape ``(k,)``, sorted ascending, on the generator's device.
    """
    device = generator.device if generator is not None else torch.device("cpu")
    excl = torch.empty(0, dtype=torch.int64, device=device) if exclude is None else exclude.to(device, torch.int64)
    free = total - excl.numel()
    if not 0 <= k <= free:
        raise ValueError(f"cannot draw {k} positions: only {free} of {total} are free")
    if k == 0:
        return torch.empty(0, dtype=torch.int64, device=device)
    if total <= 4 * (excl.numel() + k):
        cand = torch.arange(total, device=device)
        cand = cand[~_contains(excl, cand)]
        pick = torch.randperm(cand.numel(), generator=generator, device=device)[:k]
        return cand[pick].sort().values
    found = torch.empty(0, dtype=torch.int64, device=device)
    while found.numel() < k:
        need = k - found.numel()
        cand = torch.randint(0, total, (need + need // 4 + 16,), generator=generator, device=device)
        cand = cand[~_contains(excl, cand)]
        found = torch.unique(torch.cat([found, cand]))  # sorted
    if found.numel() > k:
        pick = torch.randperm(found.numel(), generator=generator, device=device)[:k]
        found = found[pick].sort().values
    return found


def _uniform(n: int, bound: float, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """``n`` draws from U(-bound, bound) on the generator's device, moved to ``like``'s device/dtype."""
    device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(n, generator=generator, device=device, dtype=like.dtype)
    return (u * (2 * bound) - bound).to(like.device)


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Zero-copy CSR view; the invariants hold by construction (see TrulySparseLinear._rebuild)."""
    return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


def _no_autocast(device: torch.device):
    """Autocast off: the sparse kernels run in the dtype of ``values`` (autocast would cast the
    CSR operand of ``mm`` to half precision, which the sparse kernels do not all support)."""
    if device.type in ("cpu", "cuda") and torch.is_autocast_enabled(device.type):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def _crow(rows_sorted: torch.Tensor, n_rows: int) -> torch.Tensor:
    """CSR row pointers ``(n_rows + 1,)`` of sorted row indices."""
    crow = torch.zeros(n_rows + 1, dtype=torch.int64, device=rows_sorted.device)
    crow[1:] = torch.cumsum(torch.bincount(rows_sorted, minlength=n_rows), 0)
    return crow


def _spmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for CSR ``a (m, k)`` and dense row-major ``b (k, N)`` -> ``(m, N)``.

    ``torch.mm`` with a CSR operand fills a zero tensor and copies it into the result before
    the product; ``addmm`` into a fresh ``out`` with ``beta=0`` skips both (the product
    overwrites ``out``), the same bits.
    """
    out = b.new_empty((a.shape[0], b.shape[1]))
    return torch.addmm(out, a, b, beta=0.0, out=out)


def _transposed(t: torch.Tensor) -> torch.Tensor:
    """``t.t()`` of a contiguous 2-D ``t`` as a tensor of its own (not a view) on the same memory.

    Autograd forbids in-place changes of a view returned by a custom Function; a tensor
    built with ``set_`` on the storage is a base tensor, so ``relu_`` & co. work on it.
    """
    return t.new_empty(0).set_(t.untyped_storage(), t.storage_offset(), (t.shape[1], t.shape[0]), (1, t.shape[1]))


# ------------------------------------------------------------ autograd Function
class _SparseLinearFunction(torch.autograd.Function):
    """``y = x W^T + b`` for ``W`` given by CSR structure + ``values``; no dense ``W`` or ``dW``.

    Shapes: ``x (N, n_in)``, ``values (nnz,)``, ``bias (n_out,)`` or ``None`` -> ``y (N, n_out)``.
    Backward (standard backprop restricted to the nonzeros, as in Curci et al. 2021):
    ``grad_x = grad_y W`` computed as ``(W^T grad_y^T)^T`` with the stored CSR of ``W^T``;
    ``grad_values[k] = sum_n grad_y[n, rows[k]] x[n, cols[k]]``, i.e. ``(grad_y^T x)``
    sampled at the nonzeros (SDDMM).

    Layouts: the CSR products want the dense operand as ``(features, N)`` row-major, so
    ``y`` and ``grad_x`` are *written* column-major (``(N, n)`` with strides ``(1, N)``,
    a plain tensor, not a view): the next truly sparse layer (and the backward of the
    previous one) reads them transposed without a copy. ``x^T`` is saved once and serves
    the forward product and the SDDMM. Per step and layer no pattern-sized temporary is
    allocated besides ``grad_values`` itself: ``W^T``'s values are gathered into the
    cached buffer ``vals_t`` and the SDDMM's zero pattern ``zeros`` is cached too (both
    rebuilt with the topology).

    With ``compiled`` (the layer's ``compiled_transposes``) the transposed copies of a
    row-major ``x`` and ``grad_y`` are made by the parallel kernel of
    :func:`~sparsenb.layers.transpose.transposed_copy`, and ``grad_x`` of a row-major ``x``
    is handed back row-major, made by the same kernel (otherwise autograd copies it into the
    layout of a leaf ``x`` on one thread). The values are the same bits in both cases.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, values: torch.Tensor, bias: torch.Tensor | None, crow: torch.Tensor,
                cols: torch.Tensor, crow_t: torch.Tensor, rows_t: torch.Tensor, perm_t: torch.Tensor,
                vals_t: torch.Tensor, zeros: torch.Tensor, shape: tuple[int, int], compiled: bool) -> torch.Tensor:
        n_out, n_in = shape
        x_t = transposed_copy(x.to(values.dtype), compiled)  # (n_in, N); no copy if x is column-major
        w = _csr(crow, cols, values, (n_out, n_in))
        with _no_autocast(x.device):
            if bias is None:
                y = _transposed(_spmm(w, x_t))
            else:  # the bias is the addmm's input: one pass less than ``w @ x_t + bias``, same bits
                y = _transposed(torch.addmm(bias.to(values.dtype)[:, None].expand(n_out, x_t.shape[1]), w, x_t))
        ctx.has_bias = bias is not None
        ctx.save_for_backward(x_t, values, crow, cols, crow_t, rows_t, perm_t, zeros)
        ctx.vals_t = vals_t  # a work buffer overwritten by every backward: not version-checked
        ctx.shape, ctx.x_dtype, ctx.compiled = shape, x.dtype, compiled
        ctx.grad_x_row_major = compiled and not x.t().is_contiguous()  # hand grad_x back in x's layout
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: torch.Tensor):
        x_t, values, crow, cols, crow_t, rows_t, perm_t, zeros = ctx.saved_tensors
        vals_t = ctx.vals_t
        n_out, n_in = ctx.shape
        gy_t = transposed_copy(grad_y.to(values.dtype), ctx.compiled)  # (n_out, N); no copy if column-major
        grad_x = grad_values = grad_bias = None
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_y.sum(0)  # as autograd reduces ``y + bias``: the same bits
        with _no_autocast(grad_y.device):
            if ctx.needs_input_grad[0]:
                if vals_t.shape == values.shape and vals_t.dtype == values.dtype:
                    torch.index_select(values, 0, perm_t, out=vals_t)
                else:  # values of another dtype than the layer's buffers (e.g. gradcheck)
                    vals_t = values[perm_t]
                gx_t = _spmm(_csr(crow_t, rows_t, vals_t, (n_in, n_out)), gy_t)  # (n_in, N)
                grad_x = (transposed_copy(gx_t, True) if ctx.grad_x_row_major else _transposed(gx_t)).to(ctx.x_dtype)
            if ctx.needs_input_grad[1]:
                if zeros.shape != values.shape or zeros.dtype != values.dtype:
                    zeros = torch.zeros_like(values)
                pattern = _csr(crow, cols, zeros, (n_out, n_in))
                grad_values = torch.sparse.sampled_addmm(pattern, gy_t, x_t.t(), beta=0.0, alpha=1.0).values()
        return grad_x, grad_values, grad_bias, None, None, None, None, None, None, None, None, None


# ---------------------------------------------------------------------- layer
class TrulySparseLinear(nn.Module):
    """A linear layer that stores and computes only its ``nnz`` connections.

    ``y = x W^T + b`` (as ``nn.Linear``) with ``W (out_features, in_features)``
    given by ``W[rows[k], cols[k]] = values[k]`` (see the module docstring).

    The topology is an Erdős–Rényi random graph (Mocanu et al. 2018; Curci et
    al. 2021): exactly ``nnz = round(density * n_in * n_out)``
    positions drawn uniformly without replacement by :func:`sample_positions`
    (O(nnz), no ``n_in x n_out`` tensor), with ``density`` given directly or as
    ``er_density(n_in, n_out, epsilon)``.

    Initialisation: ``values ~ U(-bound, bound)`` with ``bound = 1/sqrt(n_in)``
    (``init="linear"``, ``nn.Linear``'s default range; bias the same) or
    ``bound = sqrt(6/n_in)`` (``init="he_uniform"``, the authors' code,
    ``SelimaC/large-scale-sparse-neural-networks`` ``set_mlp_sequential.py``: weights and SET's new
    connections ``U(+-sqrt(6/n_in))`` at the dense fan-in, bias 0).
    ``fan_in`` is the *dense* ``n_in``, not the actual sparse fan-in
    ``density * n_in``: a masked dense ``nn.Linear`` in sparsenb
    (:meth:`sparsenb.Masking.update` with ``grow="init"``) and the authors' SET
    code draw from this range, so a truly sparse layer and its masked-dense
    twin start from the same distribution and can be compared one to one. The
    price is that the pre-activation variance at init is ``density`` times that
    of a dense layer; pass ``init="he_uniform"`` for a larger scale.

    Sparsity-aware inits (:mod:`sparsenb.core.init`, Evci et al. 2022; Liu et al. 2022):
    ``init="sparse_he"``: ``bound = sqrt(6 / k_in(i))`` with ``k_in(i)`` the number of
    connections of output neuron ``i`` (``Var = 2 / k_in``); ``init="sparse_glorot"``:
    ``bound = sqrt(6 / (k_in(i) + k_out(j)))``; bias 0 for both. Regrown connections
    (:func:`evolve_set`) get the same rule with the fans of the topology after growth.

    Args:
        in_features, out_features: ``n_in``, ``n_out``.
        density: fraction of connections kept, in ``(0, 1]``.
        epsilon: ER sparsity parameter; exactly one of ``density``/``epsilon``.
        bias: learn an additive bias ``(n_out,)``.
        generator: random generator for topology and init (``None`` = torch's global one).
        init: ``"linear"``, ``"he_uniform"`` (dense fan-in), ``"sparse_he"`` or ``"sparse_glorot"``
            (kept fans; see above).
        device, dtype: of ``values``/``bias``; the index buffers are int64 on ``device``.
        compiled_transposes: make the transposed copies of a row-major input and gradient with a
            kernel compiled by ``torch.compile`` that uses every core (CPU, at least 2**18
            elements; see :mod:`sparsenb.layers.transpose`). Off by default: it needs a C++
            compiler and compiles for 5-15 s at first use. A plain attribute, not saved in the
            ``state_dict``.

    Attributes:
        values: ``nn.Parameter (nnz,)``; ``rows``, ``cols``: int64 buffers ``(nnz,)``
        (saved in ``state_dict``). :func:`evolve_set` keeps nnz, :func:`importance_prune`
        shrinks it; ``load_state_dict`` accepts a checkpoint with any nnz. Do not change
        the structure between a forward and its backward.

    Layouts and speed: the output ``y (N, out_features)`` is column-major (strides
    ``(1, N)``), the layout the CSR products write. A truly sparse layer fed by another one
    (as in :class:`TrulySparseMLP`, through element-wise activations) transposes no data in
    forward or backward. A row-major input (a data batch, a dense layer's output) is
    transposed once in the forward; a row-major upstream gradient once in the backward.
    Torch makes these copies on one thread, so at a model's edge they keep the layer from
    scaling with threads (``benchmarks/README.md``, "Two contexts"); ``compiled_transposes=True``
    makes them on every core.
    """

    # the class-level default serves layers pickled whole by a sparsenb without this setting
    compiled_transposes: bool = False

    def __init__(self, in_features: int, out_features: int, density: float | None = None,
                 epsilon: float | None = None, bias: bool = True,
                 generator: torch.Generator | None = None, init: str = "linear",
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                 compiled_transposes: bool = False):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"in_features and out_features must be >= 1, got {in_features}, {out_features}")
        if init not in TRULY_SPARSE_INITS:
            raise ValueError(f"init must be one of {TRULY_SPARSE_INITS}, got {init!r}")
        if not isinstance(compiled_transposes, bool):
            raise TypeError(f"compiled_transposes must be True or False, got {compiled_transposes!r}")
        self.in_features, self.out_features, self.init = in_features, out_features, init
        self.compiled_transposes = compiled_transposes
        nnz = _resolve_nnz(in_features, out_features, density, epsilon)
        lin = sample_positions(in_features * out_features, nnz, generator=generator).to(device)
        self.values = nn.Parameter(torch.empty(nnz, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(out_features, device=device, dtype=dtype)) if bias else None
        self.register_buffer("rows", lin // in_features)
        self.register_buffer("cols", lin % in_features)
        for name in ("crow", "cols_k", "crow_t", "rows_t", "perm_t"):  # derived CSR caches, rebuilt on change
            self.register_buffer(name, torch.empty(0, dtype=torch.int64, device=device), persistent=False)
        for name in ("vals_t", "zeros"):  # value-sized work buffers of the backward, rebuilt on change
            self.register_buffer(name, torch.empty(0, device=device, dtype=self.values.dtype), persistent=False)
        self._rebuild()
        self.reset_parameters(generator)

    # -------------------------------------------------------------- structure
    @property
    def init_bound(self) -> float:
        """Half-width of the uniform init of ``values`` (and of regrown SET weights)."""
        return 1.0 / math.sqrt(self.in_features) if self.init == "linear" else math.sqrt(6.0 / self.in_features)

    def fresh_values(self, rows: torch.Tensor, cols: torch.Tensor, all_rows: torch.Tensor, all_cols: torch.Tensor,
                     generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
        """``U(-b, b)`` values for connections at ``(rows, cols)``: ``b = init_bound`` for the dense-scale
        inits, else ``b`` per connection from the kept fans of the topology ``(all_rows, all_cols)``."""
        if not self.init.startswith("sparse_"):
            return _uniform(rows.numel(), self.init_bound, generator, like)
        k_in = torch.bincount(all_rows, minlength=self.out_features).clamp(min=1).to(like.dtype)
        k_out = torch.bincount(all_cols, minlength=self.in_features).clamp(min=1).to(like.dtype)
        fan = k_in[rows] if self.init == "sparse_he" else k_in[rows] + k_out[cols]
        bound = (6.0 / fan).sqrt()
        return _uniform(rows.numel(), 1.0, generator, like) * bound.to(like.device)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Redraw ``values`` (and the bias) from the init distribution; the topology is kept."""
        self.values.copy_(self.fresh_values(self.rows, self.cols, self.rows, self.cols, generator, self.values))
        if self.bias is not None:
            if self.init == "linear":
                self.bias.copy_(_uniform(self.out_features, 1.0 / math.sqrt(self.in_features), generator, self.bias))
            else:
                self.bias.zero_()

    def _rebuild(self) -> None:
        """Recompute the topology caches: CSR row pointers of ``W`` and ``W^T``, the permutation
        from ``W``'s to ``W^T``'s value order, and the backward's value-sized buffers."""
        # the kernels' index arrays in int32 where they fit: MKL's sparse products take int32
        # indices, and torch converts int64 ones at every call (two nnz-sized copies per product)
        fits = max(self.values.numel(), self.in_features, self.out_features) < 2**31 - 1
        idx = torch.int32 if fits else torch.int64
        self.crow = _crow(self.rows, self.out_features).to(idx)
        self.cols_k = self.cols.to(idx)
        self.perm_t = torch.argsort(self.cols * self.out_features + self.rows)
        self.rows_t = self.rows[self.perm_t].to(idx)
        self.crow_t = _crow(self.cols[self.perm_t], self.in_features).to(idx)
        self.vals_t = torch.empty_like(self.values.detach())
        self.zeros = torch.zeros_like(self.values.detach())

    def linear_indices(self) -> torch.Tensor:
        """``rows * in_features + cols``, shape ``(nnz,)``, strictly increasing."""
        return self.rows * self.in_features + self.cols

    @torch.no_grad()
    def set_structure(self, linear_indices: torch.Tensor, values: torch.Tensor) -> None:
        """Replace the connections by sorted, unique ``linear_indices (m,)`` with ``values (m,)``.

        ``values`` is written into the *same* Parameter object (``self.values.data = ...``),
        so optimizers keep referencing it; its ``.grad`` is dropped (stale size).
        Optimizer state is the caller's business (see :func:`evolve_set`).
        """
        if linear_indices.shape != values.shape or linear_indices.dim() != 1:
            raise ValueError(f"need equal 1-D shapes, got {tuple(linear_indices.shape)} and {tuple(values.shape)}")
        lin = linear_indices.to(self.rows.device, torch.int64)
        self.rows, self.cols = lin // self.in_features, lin % self.in_features
        self.values.data = values.to(self.values.device, self.values.dtype)
        self.values.grad = None
        self._rebuild()

    # -------------------------------------------------------------- reporting
    @property
    def nnz(self) -> int:
        return self.values.numel()

    @property
    def density(self) -> float:
        return self.nnz / (self.in_features * self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, nnz={self.nnz}, "
                f"density={self.density:.4g}, bias={self.bias is not None}"
                + (", compiled_transposes=True" if self.compiled_transposes else ""))

    def to_dense(self) -> torch.Tensor:
        """The dense weight ``(out_features, in_features)``; O(n_in * n_out) memory: inspection and tests only."""
        flat = self.values.new_zeros(self.out_features * self.in_features)
        return flat.index_put((self.linear_indices(),), self.values).view(self.out_features, self.in_features)

    # ---------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (..., in_features) -> (..., out_features)``.

        The result of a 2-D input is column-major (strides ``(1, N)``, see
        :class:`_SparseLinearFunction`); call ``.contiguous()`` before ``.view`` on it.
        """
        lead = x.shape[:-1]
        y = _SparseLinearFunction.apply(x.reshape(-1, self.in_features), self.values, self.bias, self.crow,
                                        self.cols_k, self.crow_t, self.rows_t, self.perm_t, self.vals_t, self.zeros,
                                        (self.out_features, self.in_features), self.compiled_transposes)
        return y if x.dim() == 2 else y.reshape(*lead, self.out_features)

    # ------------------------------------------------------------ state dict
    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        """Accept a checkpoint with a different nnz (after importance pruning): resize first."""
        key = prefix + "values"
        if key in state_dict and state_dict[key].dim() == 1 and state_dict[key].numel() != self.nnz:
            n = state_dict[key].numel()
            self.values.data = self.values.data.new_empty(n)
            self.values.grad = None
            self.rows, self.cols = self.rows.new_empty(n), self.cols.new_empty(n)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        self._rebuild()


# ------------------------------------------------------------ optimizer state
def _remap_state(optimizer: torch.optim.Optimizer | None, param: nn.Parameter, old_nnz: int, fn) -> None:
    """Apply ``fn`` to every per-connection state tensor of ``param`` (shape ``(old_nnz,)``).

    Covers SGD's ``momentum_buffer``, Adam/AdamW's ``exp_avg``, ``exp_avg_sq``,
    ``max_exp_avg_sq``, Adagrad's ``sum``, ...; scalars such as Adam's ``step`` are kept.
    """
    if optimizer is None or param not in optimizer.state:
        return
    state = optimizer.state[param]
    for key, t in list(state.items()):
        if torch.is_tensor(t) and t.dim() == 1 and t.shape[0] == old_nnz:
            state[key] = fn(t)


# ------------------------------------------------------------------------ SET
@torch.no_grad()
def evolve_set(layer: TrulySparseLinear, drop_fraction: float, optimizer: torch.optim.Optimizer | None = None,
               generator: torch.Generator | None = None, grow_init: str = "init") -> dict[str, int]:
    """One SET topology update on a truly sparse layer (Mocanu et al. 2018, Alg. 1; Curci et al. 2021).

    1. Drop: the fraction ``drop_fraction`` (the paper's ``zeta``) of connections closest to zero,
       per sign: the ``round(zeta * n_pos)`` smallest non-negative values and the
       ``round(zeta * n_neg)`` largest negative values (:func:`sparsenb.core.dropgrow.set_drop`,
       i.e. :func:`~sparsenb.core.dropgrow.drop` by ``|w|`` per sign: the same rule as the masked SET).
    2. Grow: as many new connections, uniformly at random among the positions
       absent after the drop (a dropped position may be drawn again, as in the
       masked SET and the authors' code), via :func:`sample_positions`: the truly sparse form of
       :func:`~sparsenb.core.dropgrow.grow` with uniform random scores, which never builds the
       ``n_in x n_out`` score tensor that ``grow`` ranks.
    3. Merge, keep (row, col) sorted and unique; nnz is unchanged. Kept
       connections keep their value; new ones get ``U(-layer.init_bound,
       layer.init_bound)`` (``grow_init="init"``, SET) or 0 (``"zero"``).
    4. Optimizer state: every per-connection state tensor (momentum buffer,
       Adam moments, ...) is pruned and extended in the same order, new entries 0.
       The Parameter object is kept (``layer.values.data`` is replaced), so the
       optimizer keeps working; ``layer.values.grad`` is cleared.

    Returns:
        ``{"dropped": r, "grown": r, "nnz": nnz}``.
    """
    if not 0.0 <= drop_fraction < 1.0:
        raise ValueError(f"drop_fraction must be in [0, 1), got {drop_fraction}")
    if grow_init not in ("init", "zero"):
        raise ValueError(f"grow_init must be 'init' or 'zero', got {grow_init!r}")
    values = layer.values.detach()
    nnz = values.numel()
    drop = set_drop(values, torch.ones(nnz, dtype=torch.bool, device=values.device), drop_fraction)
    keep = ~drop
    r = int(drop.sum())
    if r == 0:
        return {"dropped": 0, "grown": 0, "nnz": nnz}
    lin = layer.linear_indices()
    kept_lin = lin[keep]  # still sorted
    sample_dev = generator.device if generator is not None else torch.device("cpu")
    new_lin = sample_positions(layer.in_features * layer.out_features, r, kept_lin.to(sample_dev),
                               generator).to(lin.device)
    all_lin = torch.cat([kept_lin, new_lin])
    n_in = layer.in_features
    new_vals = (layer.fresh_values(new_lin // n_in, new_lin % n_in, all_lin // n_in, all_lin % n_in, generator, values)
                if grow_init == "init" else values.new_zeros(r))
    order = torch.argsort(all_lin)

    def remap(t: torch.Tensor) -> torch.Tensor:
        return torch.cat([t[keep], t.new_zeros(r)])[order]

    _remap_state(optimizer, layer.values, nnz, remap)
    layer.set_structure(all_lin[order], torch.cat([values[keep], new_vals])[order])
    return {"dropped": r, "grown": r, "nnz": nnz}


# ----------------------------------------------------------- neuron pruning
def neuron_importance(layer: TrulySparseLinear) -> torch.Tensor:
    """Importance of each output neuron ``i``: ``sum_j |W[i, j]|`` over its incoming connections.

    Curci et al. 2021 (neuron importance metric). Shape ``(out_features,)``.
    """
    v = layer.values.detach()
    return v.new_zeros(layer.out_features).index_add_(0, layer.rows, v.abs())


def _percentile(x: torch.Tensor, q: float) -> torch.Tensor:
    """``numpy.percentile(x, q)`` with linear interpolation (no size limit, unlike torch.quantile)."""
    s = x.sort().values
    pos = q / 100.0 * (s.numel() - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@torch.no_grad()
def importance_prune(layer: TrulySparseLinear, percentile: float,
                     optimizer: torch.optim.Optimizer | None = None) -> torch.Tensor:
    """Remove all incoming connections of the least important output neurons.

    Curci et al. 2021 (importance pruning): with importance ``I_i = sum_j |W[i, j]|``
    (:func:`neuron_importance`) and ``t = percentile(I, percentile)`` (numpy's
    linear interpolation, over all ``out_features`` neurons, including ones
    that have no connection left), every neuron with ``I_i <= t`` loses all its
    incoming connections. The nnz shrinks; the freed budget is not regrown
    (a later :func:`evolve_set` keeps the new, smaller nnz). Apply it to hidden
    layers only (pruning output neurons would delete classes). The bias is kept.

    The authors' code applies it with ``percentile=20`` at the end of epoch
    ``e`` (0-based, before SET evolution) whenever :func:`should_prune` holds.

    Args:
        layer: the layer whose output neurons are scored.
        percentile: in ``[0, 100]``.
        optimizer: its per-connection state is pruned in step.

    Returns:
        int64 indices ``(m,)`` of the neurons with ``I_i <= t`` (sorted); all
        their incoming connections are now gone.
    """
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    imp = neuron_importance(layer)
    pruned = imp <= _percentile(imp, percentile)
    keep = ~pruned[layer.rows]
    nnz = layer.nnz
    _remap_state(optimizer, layer.values, nnz, lambda t: t[keep])
    layer.set_structure(layer.linear_indices()[keep], layer.values.detach()[keep])
    return pruned.nonzero().squeeze(1)


def should_prune(epoch: int, start: int = 200, every: int = 10) -> bool:
    """Importance-pruning schedule of the authors' code: ``epoch > start and epoch % every == 0``.

    ``epoch`` is 0-based and the check runs at the end of the epoch, before SET
    evolution (and, like evolution, not after the last epoch).
    """
    return epoch > start and epoch % every == 0


# ----------------------------------------------------------------- activation
class AllReLU(nn.Module):
    """All-ReLU (Curci et al. 2021): ReLU with a fixed, alternating negative slope.

    For hidden layer ``layer_index = i`` (0-based: the first hidden layer is 0)::

        f(x) = x          if x >= 0
        f(x) = s_i * x    if x < 0,   s_i = -alpha if i is even, +alpha if i is odd

    i.e. ``s_i = alpha * (-1)^(i+1)``: the first hidden layer maps negative inputs
    to ``-alpha * x > 0``, the second behaves as a leaky ReLU with slope ``alpha``,
    and so on. This is the sequence of the authors' code (slopes ``-0.6, 0.6,
    -0.6`` for three hidden layers, ``alpha = 0.6``). The slope is not trained.
    Shape-preserving: ``(*) -> (*)``.
    """

    def __init__(self, alpha: float = 0.6, layer_index: int = 0):
        super().__init__()
        if layer_index < 0:
            raise ValueError(f"layer_index must be >= 0, got {layer_index}")
        self.alpha, self.layer_index = float(alpha), int(layer_index)

    @property
    def negative_slope(self) -> float:
        return -self.alpha if self.layer_index % 2 == 0 else self.alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, layer_index={self.layer_index}, negative_slope={self.negative_slope}"


# ------------------------------------------------------------------------ MLP
class TrulySparseMLP(nn.Module):
    """MLP of :class:`TrulySparseLinear` layers with ER densities (Curci et al. 2021).

    ``sizes = [n_0, n_1, ..., n_L]`` gives ``L`` layers; layer ``l`` has density
    ``er_density(n_l, n_{l+1}, epsilon)``. Hidden layers are followed by the
    activation (``"relu"`` or ``"allrelu"``: :class:`AllReLU` with ``alpha`` and
    the hidden layer's 0-based index) and optional dropout; the last layer
    returns logits. Input ``(N, ...)`` is flattened to ``(N, n_0)``; output ``(N, n_L)``.
    ReLU runs in place on each layer's fresh output (``nn.ReLU(inplace=True)``: the same
    bits, one activation-sized tensor less per hidden layer, which matters at 500,000
    neurons); All-ReLU cannot (torch has no in-place backward for a negative slope).

    Args:
        sizes: layer widths, at least two.
        epsilon: ER parameter (the paper uses e.g. 20).
        activation: ``"relu"`` or ``"allrelu"``.
        alpha: All-ReLU slope magnitude (paper: 0.6 for most data sets).
        bias, init: passed to every layer.
        dropout: dropout rate after each hidden activation (authors' code: 0.3), applied by
            :class:`~sparsenb.layers.dropout.FastDropout` (torch's own CPU dropout drew its mask
            serially on an AMD EPYC and cost more than the sparse layers).
        generator: topology/init generator.
        compiled_transposes: passed to every layer (see :class:`TrulySparseLinear`). Between two
            truly sparse layers nothing is transposed, so only the first layer's transposed copy
            of a row-major input batch can use it, and only from 2**18 elements on (a batch of 128
            at 2,048 input features or more).
    """

    def __init__(self, sizes: Sequence[int], epsilon: float, activation: str = "relu", alpha: float = 0.6,
                 bias: bool = True, dropout: float = 0.0, init: str = "linear",
                 generator: torch.Generator | None = None, compiled_transposes: bool = False):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError(f"sizes needs at least input and output width, got {list(sizes)}")
        if activation not in ("relu", "allrelu"):
            raise ValueError(f"activation must be 'relu' or 'allrelu', got {activation!r}")
        self.sizes, self.epsilon = list(sizes), epsilon
        self.layers = nn.ModuleList(
            TrulySparseLinear(a, b, epsilon=epsilon, bias=bias, generator=generator, init=init,
                              compiled_transposes=compiled_transposes)
            for a, b in zip(sizes[:-1], sizes[1:]))
        self.activations = nn.ModuleList(
            AllReLU(alpha, i) if activation == "allrelu" else nn.ReLU(inplace=True) for i in range(len(sizes) - 2))
        self.dropout = FastDropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for layer, act in zip(self.layers[:-1], self.activations):
            x = self.dropout(act(layer(x)))
        return self.layers[-1](x)

    def nnz(self) -> int:
        return sum(layer.nnz for layer in self.layers)

    def evolve(self, drop_fraction: float, optimizer: torch.optim.Optimizer | None = None,
               generator: torch.Generator | None = None, grow_init: str = "init",
               include_last: bool = False) -> list[dict[str, int]]:
        """:func:`evolve_set` on every layer; the output layer only if ``include_last``.

        The authors' code (like the original SET code) evolves only the layers
        feeding hidden neurons and keeps the output layer's topology fixed.
        """
        layers = self.layers if include_last else self.layers[:-1]
        return [evolve_set(layer, drop_fraction, optimizer, generator, grow_init) for layer in layers]

    def importance_prune(self, percentile: float = 20.0,
                         optimizer: torch.optim.Optimizer | None = None) -> list[torch.Tensor]:
        """:func:`importance_prune` on every hidden layer (not the output layer); the pruned neurons per layer."""
        return [importance_prune(layer, percentile, optimizer) for layer in self.layers[:-1]]


# -- removing neurons from a truly sparse MLP (the paper's importance pruning deletes them) --


def er_layer_nnz(sizes: Sequence[int], epsilon: float) -> list[int]:
    """nnz of each layer of a :class:`TrulySparseMLP` with these sizes and ``epsilon`` (capped at dense)."""
    return [_resolve_nnz(a, b, None, epsilon) for a, b in zip(sizes[:-1], sizes[1:])]


@torch.no_grad()
def remove_neurons(model: TrulySparseMLP, removed: Sequence[set], optimizer: torch.optim.Optimizer | None = None) -> int:
    """Delete hidden neurons from the network: every incoming *and* outgoing connection of the neurons in
    ``removed[l]`` (hidden layer ``l``, 0-based) is dropped, optimizer state in step.

    :func:`importance_prune` only cuts a neuron's incoming connections and
    SET regrowth may later land on it again; the paper removes pruned neurons from the network, which is
    what this does (called after every evolution, it discards regrown connections that landed on a removed
    neuron, so nnz shrinks a little more). Returns the number of connections dropped.
    """
    dropped = 0
    for l, gone in enumerate(removed):
        if not gone:
            continue
        idx = torch.tensor(sorted(gone), dtype=torch.int64)
        for layer, attr in ((model.layers[l], "rows"), (model.layers[l + 1], "cols")):
            keep = ~torch.isin(getattr(layer, attr), idx)
            n = int((~keep).sum())
            if n:
                _remap_state(optimizer, layer.values, layer.nnz, lambda t: t[keep])
                layer.set_structure(layer.linear_indices()[keep], layer.values.detach()[keep])
                dropped += n
    return dropped


@torch.no_grad()
def regrow_alive(model: TrulySparseMLP, removed: Sequence[set], budget: Sequence[int],
                 optimizer: torch.optim.Optimizer | None = None, generator: torch.Generator | None = None) -> int:
    """Top every layer up to ``budget[l]`` connections with new ones drawn uniformly among the absent
    positions between neurons that are still present (rows and columns not in ``removed``).

    This is SET's random regrowth in the network the paper gets by deleting pruned neurons (the layer
    shrinks, so regrowth can only land on remaining neurons). New values ``U(-init_bound, init_bound)``,
    optimizer state 0. Returns the number of connections grown.
    """
    grown = 0
    hidden = len(model.layers) - 1
    for l, layer in enumerate(model.layers):
        k = budget[l] - layer.nnz
        if k <= 0:
            continue
        rows_alive = torch.ones(layer.out_features, dtype=torch.bool)
        cols_alive = torch.ones(layer.in_features, dtype=torch.bool)
        if l < hidden and removed[l]:
            rows_alive[torch.tensor(sorted(removed[l]), dtype=torch.int64)] = False
        if l > 0 and removed[l - 1]:
            cols_alive[torch.tensor(sorted(removed[l - 1]), dtype=torch.int64)] = False
        R, C = rows_alive.nonzero().squeeze(1), cols_alive.nonzero().squeeze(1)
        k = min(k, R.numel() * C.numel() - layer.nnz)
        if k <= 0:
            continue
        # existing connections (all between present neurons) in the compact R x C index space
        compact = torch.searchsorted(R, layer.rows) * C.numel() + torch.searchsorted(C, layer.cols)
        new = sample_positions(R.numel() * C.numel(), k, compact.sort().values, generator)
        new_lin = R[new // C.numel()] * layer.in_features + C[new % C.numel()]
        lin = layer.linear_indices()
        all_lin = torch.cat([lin, new_lin])
        order = torch.argsort(all_lin)
        n_old = layer.nnz
        _remap_state(optimizer, layer.values, n_old, lambda t: torch.cat([t, t.new_zeros(k)])[order])
        n_in = layer.in_features
        fresh = layer.fresh_values(new_lin // n_in, new_lin % n_in, all_lin // n_in, all_lin % n_in, generator,
                                   layer.values.detach())
        vals = torch.cat([layer.values.detach(), fresh])
        layer.set_structure(all_lin[order], vals[order])
        grown += k
    return grown


@torch.no_grad()
def importance_prune_alive(model: TrulySparseMLP, removed: Sequence[set], percentile: float = 20.0) -> list[torch.Tensor]:
    """The neurons importance pruning selects when removed neurons are gone from the layer (the paper).

    Per hidden layer ``l``: importance ``I_i = sum_j |W_ij|`` (:func:`neuron_importance`), threshold
    ``t = percentile(I over the neurons not in removed[l])``, selected = not-yet-removed neurons with
    ``I_i <= t``. (:func:`importance_prune` takes the percentile over all
    ``out_features`` neurons; once >= ``percentile`` % of them are removed, its threshold is 0 and it stops
    pruning.) Nothing is changed here: pass the result to ``removed`` and call :func:`remove_neurons`.
    Returns one sorted int64 tensor of neuron indices per hidden layer.
    """
    out = []
    for layer, gone in zip(model.layers[:-1], removed):
        imp = neuron_importance(layer)
        alive = torch.ones(layer.out_features, dtype=torch.bool)
        if gone:
            alive[torch.tensor(sorted(gone), dtype=torch.int64)] = False
        if not alive.any():
            out.append(torch.empty(0, dtype=torch.int64))
            continue
        t = _percentile(imp[alive], percentile)
        out.append(((imp <= t) & alive).nonzero().squeeze(1))
    return out


def active_neurons(model: TrulySparseMLP) -> list[int]:
    """Per hidden layer, the neurons that still have at least one incoming connection."""
    return [int(torch.unique(layer.rows).numel()) for layer in model.layers[:-1]]
