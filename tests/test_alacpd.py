"""ALACPD (sparsenb.cpd.alacpd): inputs, cell, detection of an obvious change, determinism, bounded memory."""
import numpy as np
import pytest
import torch

from sparsenb.cpd.alacpd import (ALACPD, ALACPDConfig, SkipLSTMAutoencoder, detect, hard_sigmoid, lagged_windows,
                             prepare_series)

FAST = dict(units=8, warmup_epochs=3, epochs_per_sample=1, epochs_after_change=10)


def test_lagged_windows_by_hand():
    ctx = np.arange(15.0)[:, None]  # w = 6, h = 4: 2w + h - 1 = 15 values
    x, lags = lagged_windows(ctx, window=6, horizon=4)
    assert x[:, 0].tolist() == [9, 10, 11, 12, 13, 14]
    assert lags.shape == (6, 6, 1)
    assert lags[0, :, 0].tolist() == [5, 6, 7, 8, 9, 10]   # ends h = 4 steps before 14
    assert lags[5, :, 0].tolist() == [0, 1, 2, 3, 4, 5]    # ends h + 5 = 9 steps before
    with pytest.raises(ValueError, match="needs the last 15 values"):
        lagged_windows(ctx[1:], 6, 4)


def test_hard_sigmoid():
    assert torch.allclose(hard_sigmoid(torch.tensor([-5.0, 0.0, 1.0, 5.0])), torch.tensor([0.0, 0.5, 0.7, 1.0]))


def test_model_shapes_and_independent_members():
    m = SkipLSTMAutoencoder(n_dim=2, window=6, units=5, skips=(3, 5, 7), highway=6, seed=0)
    x, lags = torch.randn(3, 4, 6, 2), torch.randn(3, 4, 6, 6, 2)
    assert m(x, lags).shape == (3, 4, 6, 2)
    assert m.losses(x, lags).shape == (3, 4)
    # member 0's loss has no gradient on member 1's weights
    m.losses(x, lags)[0].sum().backward()
    assert m.enc.kernel.grad[1].abs().sum() == 0 and m.enc.kernel.grad[0].abs().sum() > 0


def test_skip_path_reads_the_output_s_steps_back():
    # with the LSTM path switched off (s0 = 0) the output at step t depends on step t - s only
    m = SkipLSTMAutoencoder(n_dim=1, window=6, units=3, skips=(3,), highway=6, seed=0)
    with torch.no_grad():
        m.enc.s0.zero_()
    inputs = [torch.randn(1, 1, 1) for _ in range(6)]
    outs = m._run(m.enc, inputs)
    expected = torch.sigmoid(outs[1] @ m.enc.skip_kernel + m.enc.skip_bias[:, None])  # t = 4 reads t = 1
    assert torch.allclose(outs[4], expected)
    assert torch.allclose(outs[2], torch.sigmoid(m.enc.skip_bias[:, None]).expand(1, 1, 3))  # t - 3 < 0: zeros


def test_prepare_series_interpolates_and_zscores():
    z = prepare_series(np.array([[1.0], [np.nan], [3.0], [5.0]]))
    raw = np.array([1.0, 2.0, 3.0, 5.0])
    assert np.allclose(z[:, 0], (raw - raw.mean()) / raw.std())


def test_detects_an_obvious_mean_shift():
    rng = np.random.default_rng(0)
    y = np.r_[rng.normal(0, 0.3, 120), rng.normal(4, 0.3, 80)][:, None]
    res = detect(prepare_series(y), ALACPDConfig(**FAST), seed=0)
    cps = res["change_points"]
    assert any(abs(c - 120) <= 5 for c in cps), cps
    assert len(cps) <= 3, cps  # no flood of false alarms on flat noise


def test_deterministic_for_a_seed():
    rng = np.random.default_rng(1)
    z = prepare_series(np.r_[rng.normal(0, 1, 60), rng.normal(3, 1, 40)][:, None])
    cfg = ALACPDConfig(**FAST)
    a, b = detect(z, cfg, seed=3), detect(z, cfg, seed=3)
    assert a["change_points"] == b["change_points"]
    assert [e["losses"] for e in a["events"]] == [e["losses"] for e in b["events"]]


def test_memory_free_state_does_not_grow():
    cfg = ALACPDConfig(units=4, warmup_epochs=1, epochs_per_sample=1, epochs_after_change=2)
    rng = np.random.default_rng(2)
    # regime changes every 50 steps so the detector also passes through its adaptation state
    y = (np.repeat(rng.normal(0, 3, 8), 50) + rng.normal(0, 0.2, 400))[:, None]
    det = ALACPD(1, cfg, seed=0)
    det.fit_offline(y[:20])
    sizes, n_changes = [], 0
    for v in y[20:]:
        n_changes += sum(e["change_point"] is not None for e in det.update(v))
        sizes.append(det.state_size())
    assert n_changes >= 1  # the adaptation path was exercised
    assert max(sizes) <= ALACPD.state_bound(1, cfg)
    assert len(det.buffer) == cfg.context and len(det.pending) <= cfg.samples_after_change
    # nothing in the detector holds an array that grew with the stream
    for name, value in vars(det).items():
        if isinstance(value, (list, np.ndarray, torch.Tensor)) or hasattr(value, "__len__"):
            assert len(value) <= cfg.context, name


def test_update_before_warmup_is_an_error():
    det = ALACPD(1)
    with pytest.raises(RuntimeError, match="fit_offline"):
        det.update(np.zeros(1))
    with pytest.raises(ValueError, match="expected 1 channels"):
        det.fit_offline(np.zeros((5, 2)))
