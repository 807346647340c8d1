"""ALACPD: memory-free online change-point detection with an adaptive LSTM-autoencoder ensemble.

Atashgahi, Mocanu, Veldhuis, Pechenizkiy (2022), "Memory-free Online Change-point Detection:
A Novel Neural Network Approach", arXiv:2207.03932. Defaults from the official code
(``zahraatashgahi/ALACPD``); this is an independent PyTorch implementation.

The model (one ensemble member, :class:`SkipLSTMAutoencoder` holds all members at once)
    Input at time ``r``: the window ``x = z[r-w+1 .. r]`` (w = 6) and ``w`` lagged windows
    ``x^(j) = z[r-h-j-w+1 .. r-h-j]`` (h = 4, j = 0..w-1) for the autoregressive highway.
    Encoder: a skip-LSTM (20 units) over ``x``; its last state is repeated ``w`` times and
    decoded by a second skip-LSTM; a dense layer maps the decoder states to the ``w x d``
    reconstruction. A skip-LSTM cell with skip ``s`` mixes the LSTM output with a gated
    connection to its own output ``s`` steps back::

        h_t = s0 * LSTM(x_t, h_{t-1}, c_{t-1}) + (1 - s0) * sigmoid(W_s h_{t-s} + b_s)

    with a learned scalar ``s0`` (initialised 0.5) and hard-sigmoid gates as in Keras. The
    highway adds, at output position ``i``, ``a_i . x^(i)[-hw:] + b_i`` per channel (hw = 6).
    The ensemble has 3 members with skips 3, 5, 7. The loss is the mean squared
    reconstruction error; training is plain SGD (lr 1e-3, batch 1).

    Note on the skip: the official Keras cell keeps ``skip`` past outputs in a rolled buffer
    whose oldest slot is, after the first steps, always the output 2 steps back. We follow
    the paper's definition (``h_{t-s}``); with a window of 6 the skip-7 member therefore sees
    only zeros through its skip path, i.e. a constant ``sigmoid(b_s)``.

The detector (:class:`ALACPD`)
    Offline: train every member for 10 epochs on the first 10 % of the series; the reference
    loss ``L_k`` is member ``k``'s mean loss on that data. Online, for each new sample with
    losses ``l_k``: it is *anomalous* if more than half of the members have
    ``l_k >= th * L_k`` (``th = 4`` until more than 7 normal samples have been seen since the
    last change, then 1.4), it is past the 8th online sample and more than 4 normal samples
    have been seen. A normal sample trains every member for 5 epochs on it and updates ``L_k``
    as a running mean over the normal samples since the last change. More than 3 consecutive
    anomalies declare a change at ``idx - 3 + w // 2`` where ``idx = r - h`` is the official
    code's index of the current sample (so, with the defaults, one step before the first of
    the 4 anomalies); the members are then retrained for 100 epochs on the current sample and
    the next 2 (the official code reads them ahead; here the detector waits for them), ``L_k``
    is reset to the loss on those 3 samples, and the waiting samples are then tested.

Memory-free: the detector keeps the model, ``L_k``, a few counters, a ring buffer of the last
``2w + h - 1`` values (what one sample's inputs need) and at most 3 samples awaiting
retraining. No past data beyond that is stored.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["ALACPDConfig", "SkipLSTMAutoencoder", "ALACPD", "hard_sigmoid", "lagged_windows",
           "prepare_series", "detect"]


@dataclass
class ALACPDConfig:
    """ALACPD's settings; the defaults are the official code's."""

    window: int = 6                 # w: length of the reconstructed window
    horizon: int = 4                # h: lag of the autoregressive highway's windows
    highway: int = 6                # hw: values of each lagged window used by the highway
    units: int = 20                 # units of each skip-LSTM
    skips: tuple = (3, 5, 7)        # one member per skip size
    lr: float = 1e-3                # SGD learning rate (batch 1, no momentum)
    warmup_fraction: float = 0.1    # offline warm-up on the first 10 % of the samples
    warmup_min: int = 10            # at least this many warm-up samples (short series)
    warmup_epochs: int = 10
    epochs_per_sample: int = 5      # training epochs on each normal sample
    epochs_after_change: int = 100  # retraining epochs after a change
    samples_after_change: int = 3   # the current sample and the next ones used to retrain
    threshold_high: float = 4.0     # th until `normal_before_low` normal samples since a change
    threshold_low: float = 1.4
    normal_before_low: int = 7
    min_normal: int = 4             # an anomaly needs more than this many normal samples since a change
    min_index: int = 8              # ... and an online index past this one
    anomalies_for_change: int = 3   # more than this many consecutive anomalies declare a change

    def __post_init__(self) -> None:
        self.skips = tuple(int(s) for s in self.skips)
        if self.highway > self.window:
            raise ValueError(f"highway={self.highway} must be <= window={self.window}")
        if not self.skips:
            raise ValueError("skips must name at least one ensemble member")

    @property
    def context(self) -> int:
        """Values one sample needs: the window and the oldest lagged window (2w + h - 1)."""
        return 2 * self.window + self.horizon - 1


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Keras' hard sigmoid: clip(0.2 x + 0.5, 0, 1)."""
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


def lagged_windows(context: np.ndarray, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """The inputs of the sample whose last value is ``context[-1]``.

    context: (2w + h - 1, d) most recent values. Returns ``x`` (w, d) = the last w values and
    ``lags`` (w, w, d) with ``lags[j]`` the window ending ``h + j`` steps before the last value.
    """
    need = 2 * window + horizon - 1
    if context.shape[0] != need:
        raise ValueError(f"a sample needs the last {need} values, got {context.shape[0]}")
    end = need - 1  # position of the current value
    x = context[end - window + 1:end + 1]
    lags = np.stack([context[end - horizon - j - window + 1:end - horizon - j + 1] for j in range(window)])
    return x, lags


class SkipLSTMAutoencoder(nn.Module):
    """E skip-LSTM autoencoders with an autoregressive highway, computed side by side.

    Every parameter has a leading member dimension E = len(skips); members share nothing.
    forward(x (E, B, w, d), lags (E, B, w, w, d)) -> reconstruction (E, B, w, d).
    Initialisation as in Keras: Glorot-uniform input and dense kernels, orthogonal recurrent
    kernels, zero biases except the forget gate's (1), ``s0 = 0.5``.
    """

    def __init__(self, n_dim: int, window: int = 6, units: int = 20, skips: Sequence[int] = (3, 5, 7),
                 highway: int = 6, seed: int = 0):
        super().__init__()
        self.n_dim, self.window, self.units, self.highway = n_dim, window, units, highway
        self.skips = tuple(int(s) for s in skips)
        E, u, w, d = len(self.skips), units, window, n_dim
        g = torch.Generator().manual_seed(seed)
        self.enc = _SkipCellParams(E, d, u, g)
        self.dec = _SkipCellParams(E, u, u, g)
        self.dense_w = nn.Parameter(_glorot(E, w * u, w * d, g))
        self.dense_b = nn.Parameter(torch.zeros(E, w * d))
        self.ar_w = nn.Parameter(torch.stack([_glorot(w, highway, 1, g)[..., 0] for _ in range(E)]))  # (E, w, hw)
        self.ar_b = nn.Parameter(torch.zeros(E, w))

    def _run(self, cell: "_SkipCellParams", inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        E, B = inputs[0].shape[:2]
        h = inputs[0].new_zeros(E, B, self.units)
        c = torch.zeros_like(h)
        outs: list[torch.Tensor] = []
        for t, x_t in enumerate(inputs):
            past = torch.stack([outs[t - s][e] if t - s >= 0 else h.new_zeros(B, self.units)
                                for e, s in enumerate(self.skips)])
            h, c = cell.step(x_t, h, c, past)
            outs.append(h)
        return outs

    def forward(self, x: torch.Tensor, lags: torch.Tensor) -> torch.Tensor:
        E, B, w, d = x.shape
        encoded = self._run(self.enc, list(x.unbind(2)))[-1]                    # (E, B, u)
        decoded = torch.stack(self._run(self.dec, [encoded] * w), dim=2)       # (E, B, w, u)
        y = torch.baddbmm(self.dense_b[:, None], decoded.reshape(E, B, w * self.units), self.dense_w)
        y = y.reshape(E, B, w, d)
        recent = lags[:, :, :, -self.highway:, :]                               # (E, B, w, hw, d)
        ar = torch.einsum("ebihd,eih->ebid", recent, self.ar_w) + self.ar_b[:, None, :, None]
        return y + ar

    def losses(self, x: torch.Tensor, lags: torch.Tensor) -> torch.Tensor:
        """Mean squared reconstruction error per member and sample: (E, B)."""
        return ((self(x, lags) - x) ** 2).mean(dim=(2, 3))


class _SkipCellParams(nn.Module):
    """Parameters of E skip-LSTM cells (input size n_in, u units) and one step of them."""

    def __init__(self, E: int, n_in: int, u: int, g: torch.Generator):
        super().__init__()
        self.kernel = nn.Parameter(_glorot(E, n_in, 4 * u, g))
        self.recurrent = nn.Parameter(torch.stack([_orthogonal(u, 4 * u, g) for _ in range(E)]))
        bias = torch.zeros(E, 4 * u)
        bias[:, u:2 * u] = 1.0  # unit forget bias
        self.bias = nn.Parameter(bias)
        self.skip_kernel = nn.Parameter(_glorot(E, u, u, g))
        self.skip_bias = nn.Parameter(torch.zeros(E, u))
        self.s0 = nn.Parameter(torch.full((E, 1, 1), 0.5))

    def step(self, x_t: torch.Tensor, h: torch.Tensor, c: torch.Tensor, past: torch.Tensor):
        """x_t (E, B, n_in), h, c, past (E, B, u) -> (h, c) of the next step."""
        z = torch.baddbmm(self.bias[:, None], x_t, self.kernel) + torch.bmm(h, self.recurrent)
        i, f, g, o = z.chunk(4, dim=-1)
        c = hard_sigmoid(f) * c + hard_sigmoid(i) * torch.tanh(g)
        h_lstm = hard_sigmoid(o) * torch.tanh(c)
        h_skip = torch.sigmoid(torch.baddbmm(self.skip_bias[:, None], past, self.skip_kernel))
        return self.s0 * h_lstm + (1 - self.s0) * h_skip, c


def _glorot(E: int, fan_in: int, fan_out: int, g: torch.Generator) -> torch.Tensor:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return (torch.rand(E, fan_in, fan_out, generator=g) * 2 - 1) * limit


def _orthogonal(rows: int, cols: int, g: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(cols, rows, generator=g))
    return (q * torch.sign(torch.diagonal(r))).T.contiguous()  # (rows, cols), orthonormal rows


class ALACPD:
    """The online detector: feed values one at a time with :meth:`update`.

    Args:
        n_dim: channels d of the series.
        config: :class:`ALACPDConfig` (defaults = the official code's).
        seed: seeds the initial weights and the shuffling of the training epochs.

    Use: ``fit_offline(z_warm)`` on the first values, then ``update(z_t)`` for every later
    value (each returns the list of change points it declares, usually empty), then
    ``flush()`` at the end of the stream. Nothing of the stream is kept beyond the last
    ``config.context`` values and the samples awaiting retraining (at most
    ``samples_after_change``).
    """

    def __init__(self, n_dim: int, config: ALACPDConfig | None = None, seed: int = 0):
        self.cfg = config or ALACPDConfig()
        self.model = SkipLSTMAutoencoder(n_dim, self.cfg.window, self.cfg.units, self.cfg.skips,
                                         self.cfg.highway, seed=seed)
        self.n_members = len(self.cfg.skips)
        self.rng = torch.Generator().manual_seed(seed + 1)
        self.buffer: deque = deque(maxlen=self.cfg.context)
        self.t = -1                  # time index of the last value received
        self.online_index = -1       # index of the last online sample (0 = first after warm-up)
        self.reference = torch.zeros(self.n_members)   # L_k
        self.n_normal = 0
        self.n_anomalies = 0
        self.pending: list[tuple[torch.Tensor, torch.Tensor, int, int]] = []

    # -- training ---------------------------------------------------------------------------
    def _train(self, xs: torch.Tensor, lags: torch.Tensor, epochs: int) -> None:
        """SGD, batch 1, ``epochs`` passes over the N samples, a fresh order per member and epoch.

        xs (N, w, d), lags (N, w, w, d): the same samples for every member.
        """
        n, E = xs.shape[0], self.n_members
        params = list(self.model.parameters())
        for _ in range(epochs):
            order = torch.stack([torch.randperm(n, generator=self.rng) for _ in range(E)], dim=1)  # (N, E)
            for k in range(n):
                idx = order[k]
                loss = self.model.losses(xs[idx][:, None], lags[idx][:, None]).sum()
                grads = torch.autograd.grad(loss, params)
                with torch.no_grad():
                    for p, gr in zip(params, grads):
                        p.sub_(self.cfg.lr * gr)

    def _losses(self, xs: torch.Tensor, lags: torch.Tensor) -> torch.Tensor:
        """Mean loss per member over the N samples: (E,)."""
        E = self.n_members
        with torch.no_grad():
            return self.model.losses(xs.expand(E, *xs.shape), lags.expand(E, *lags.shape)).mean(dim=1)

    # -- the stream -------------------------------------------------------------------------
    def _sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        context = np.stack(self.buffer)
        x, lags = lagged_windows(context, self.cfg.window, self.cfg.horizon)
        return torch.from_numpy(x).float(), torch.from_numpy(lags).float()

    def _push(self, value: np.ndarray) -> None:
        value = np.asarray(value, dtype=np.float64).reshape(-1)
        if value.shape[0] != self.model.n_dim:
            raise ValueError(f"expected {self.model.n_dim} channels, got {value.shape[0]}")
        if not self.buffer:  # left-pad with the first value so every time step has its lagged windows
            self.buffer.extend([value] * (self.cfg.context - 1))
        self.buffer.append(value)
        self.t += 1

    def fit_offline(self, values: np.ndarray) -> None:
        """Warm-up on the first values (n_warm, d): train ``warmup_epochs`` and set ``L_k``.

        The samples are built, used and dropped here; the detector keeps only the buffer.
        """
        if self.t >= 0:
            raise RuntimeError("fit_offline must come before the first update")
        values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
        if len(values) < 1:
            raise ValueError("the warm-up needs at least one value")
        xs, lags = [], []
        for v in values:
            self._push(v)
            x, lag = self._sample()
            xs.append(x)
            lags.append(lag)
        xs_t, lags_t = torch.stack(xs), torch.stack(lags)
        self._train(xs_t, lags_t, self.cfg.warmup_epochs)
        self.reference = self._losses(xs_t, lags_t)
        self.n_normal = len(values)

    def update(self, value: np.ndarray) -> list[dict]:
        """Process one new value (d,). Returns one event per sample tested now.

        An event: ``{"t", "losses" (E,), "threshold", "anomalous", "change_point" (int or None)}``.
        Usually one event; none while waiting for the samples after a change, then several.
        """
        if self.t < 0:
            raise RuntimeError("call fit_offline on the first values before update")
        self._push(value)
        self.online_index += 1
        x, lags = self._sample()
        sample = (x, lags, self.t, self.online_index)
        if self.pending:
            self.pending.append(sample)
            if len(self.pending) < self.cfg.samples_after_change:
                return []
            return self._adapt()
        return [self._test(sample)]

    def flush(self) -> list[dict]:
        """End of the stream: retrain on any samples waiting after a change and test them."""
        return self._adapt() if self.pending else []

    def _adapt(self) -> list[dict]:
        waiting, self.pending = self.pending, []
        xs = torch.stack([s[0] for s in waiting])
        lags = torch.stack([s[1] for s in waiting])
        self._train(xs, lags, self.cfg.epochs_after_change)
        self.reference = self._losses(xs, lags)
        return [self._test(s) for s in waiting[1:]]

    def _test(self, sample: tuple[torch.Tensor, torch.Tensor, int, int]) -> dict:
        x, lags, t, index = sample
        cfg = self.cfg
        losses = self._losses(x[None], lags[None])
        th = cfg.threshold_low if self.n_normal > cfg.normal_before_low else cfg.threshold_high
        votes = int((losses >= th * self.reference).sum())
        anomalous = votes > self.n_members / 2 and index > cfg.min_index and self.n_normal > cfg.min_normal
        event = {"t": t, "losses": losses.tolist(), "reference": self.reference.tolist(), "threshold": th,
                 "anomalous": bool(anomalous), "change_point": None}
        if anomalous:
            self.n_anomalies += 1
            if self.n_anomalies > cfg.anomalies_for_change:
                event["change_point"] = (t - cfg.horizon) - cfg.anomalies_for_change + cfg.window // 2
                self.n_anomalies = 0
                self.n_normal = 0
                self.pending = [sample]
        else:
            self.n_anomalies = 0
            self.n_normal += 1
            self._train(x[None], lags[None], cfg.epochs_per_sample)
            new = self._losses(x[None], lags[None])
            self.reference = (self.reference * (self.n_normal - 1) + new) / self.n_normal
        return event

    @staticmethod
    def state_bound(n_dim: int, config: "ALACPDConfig | None" = None) -> int:
        """The most :meth:`state_size` can ever be, whatever the stream's length."""
        cfg = config or ALACPDConfig()
        per_sample = (cfg.window + cfg.window * cfg.window) * n_dim
        return cfg.context * n_dim + cfg.samples_after_change * per_sample + len(cfg.skips)

    def state_size(self) -> int:
        """Numbers the detector holds besides its weights (buffer + waiting samples + L_k)."""
        waiting = sum(s[0].numel() + s[1].numel() for s in self.pending)
        return len(self.buffer) * self.model.n_dim + waiting + self.reference.numel()


def prepare_series(values: np.ndarray) -> np.ndarray:
    """Missing values linearly interpolated (ends: nearest value), then z-scored per channel.

    values: (n, d) with NaN for missing. As the official code, the mean and standard
    deviation are those of the whole series (a constant channel is only centred).
    """
    values = np.asarray(values, dtype=np.float64)
    out = values.copy()
    idx = np.arange(len(values))
    for j in range(values.shape[1]):
        ok = ~np.isnan(values[:, j])
        if not ok.any():
            raise ValueError(f"channel {j} has no value at all")
        out[:, j] = np.interp(idx, idx[ok], values[ok, j])
    std = out.std(axis=0)
    return (out - out.mean(axis=0)) / np.where(std > 0, std, 1.0)


def detect(values: np.ndarray, config: ALACPDConfig | None = None, seed: int = 0) -> dict:
    """Run ALACPD over a whole (already prepared) series (n, d).

    The first ``max(warmup_fraction * n, warmup_min)`` values (at most n - 1) warm the model up
    offline; the rest stream through :meth:`ALACPD.update`. Returns
    ``{"change_points": [...], "events": [...], "n_warmup": int, "online_seconds": float,
    "seconds_per_sample": float, "max_state_size": int, "config": dict}``.
    """
    import time

    cfg = config or ALACPDConfig()
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    n = len(values)
    n_warm = min(max(int(cfg.warmup_fraction * n), cfg.warmup_min), n - 1)
    det = ALACPD(values.shape[1], cfg, seed=seed)
    det.fit_offline(values[:n_warm])
    events: list[dict] = []
    max_state = det.state_size()
    t0 = time.perf_counter()
    for v in values[n_warm:]:
        events += det.update(v)
        max_state = max(max_state, det.state_size())
    events += det.flush()
    seconds = time.perf_counter() - t0
    return {"change_points": [e["change_point"] for e in events if e["change_point"] is not None],
            "events": events, "n_warmup": n_warm, "online_seconds": seconds,
            "seconds_per_sample": seconds / max(1, n - n_warm), "max_state_size": max_state,
            "config": asdict(cfg)}
