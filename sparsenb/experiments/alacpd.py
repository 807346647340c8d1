"""Driver of the ALACPD notebook: ALACPD and the baselines on TCPD series, scores, ranks, figures.

Atashgahi, Mocanu, Veldhuis, Pechenizkiy (2022), arXiv:2207.03932 (detector:
:mod:`sparsenb.cpd.alacpd`), scored like van den Burg & Williams (2020) (data:
:mod:`sparsenb.data.tcpd`; metrics: :mod:`sparsenb.cpd.metrics`; baselines and protocols:
:mod:`sparsenb.cpd.baselines`).

One unit of work = one series: ALACPD for every seed (scores averaged over seeds), the four
``ruptures`` baselines at their default setting and over their oracle grid, and the zero
detector. Every series is z-scored with missing values interpolated
(:func:`sparsenb.cpd.alacpd.prepare_series`) before any detector sees it.

Ranks (as TCPDBench): per series and metric, methods are ranked by score (1 = best, ties
share the mean rank) and the ranks are averaged over the series.
"""
from __future__ import annotations

import time
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..cpd import baselines as cb
from ..cpd.alacpd import ALACPDConfig, detect, prepare_series
from ..cpd.metrics import covering, f_measure
from ..data.tcpd import TcpdSeries, load_tcpd, tcpd_names
from .spec import settings_class

__all__ = ["Settings", "OURS", "select_series", "alacpd_config", "run_series", "score_table", "average_ranks",
           "claim_verdicts", "plot_series_grid", "plot_rank_table", "plot_time_per_sample"]

Settings = settings_class("13_alacpd")  # typed, frozen; from specs/13_alacpd.json
CLAIMS = ("ALACPD ranks first on average covering among the compared detectors (default settings)",
                  "ALACPD is on par with the best detector on F1 (mean F1 within 0.05, default settings)")

OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "alacpd_first_covering": lambda m: (f"ALACPD average rank {m.get('default/cover/rank/alacpd', float('nan')):.2f} vs best other " f"{m.get('default/cover/best_other_rank', float('nan')):.2f} " f"({m.get('default/cover/best_other', '—')}); mean covering " f"{m.get('default/cover/mean/alacpd', float('nan')):.3f}; {m.get('series', '—')} series"),
    "alacpd_on_par_f1": lambda m: (f"mean F1 ALACPD {m.get('default/f1/mean/alacpd', float('nan')):.3f} vs best other " f"{m.get('default/f1/best_other_mean', float('nan')):.3f} " f"({m.get('default/f1/best_other', '—')}); average rank " f"{m.get('default/f1/rank/alacpd', float('nan')):.2f}"),
}

METRICS = ("f1", "cover")


def select_series(spec: str | Sequence[str], max_length: int | None = None) -> list[str]:
    """Series names from ``"all"`` (the 42), ``"mirror"`` (the 32 shipped as files) or a list;
    with ``max_length``, only those with at most that many observations (loads them to check)."""
    if isinstance(spec, str):
        if spec not in ("all", "mirror"):
            raise ValueError(f"SERIES must be 'all', 'mirror' or a list of TCPD names, got {spec!r}")
        names = tcpd_names(in_mirror_only=spec == "mirror")
    else:
        names = list(spec)
    if max_length is None:
        return names
    return [n for n in names if load_tcpd(n).n_obs <= max_length]


def alacpd_config(cfg: dict) -> ALACPDConfig:
    """The :class:`ALACPDConfig` of a notebook config (keys in upper case)."""
    return ALACPDConfig(window=cfg["WINDOW"], horizon=cfg["HORIZON"], highway=cfg["HIGHWAY"], units=cfg["UNITS"],
                        skips=tuple(cfg["SKIPS"]), lr=cfg["LR"], warmup_fraction=cfg["WARMUP_FRACTION"],
                        warmup_min=cfg["WARMUP_MIN"], warmup_epochs=cfg["WARMUP_EPOCHS"],
                        epochs_per_sample=cfg["EPOCHS_PER_SAMPLE"], epochs_after_change=cfg["EPOCHS_AFTER_CHANGE"])


def _scores(series: TcpdSeries, cps: list[int], margin: int) -> dict:
    return {"cps": sorted(int(c) for c in cps), "f1": f_measure(series.annotations, cps, margin),
            "cover": covering(series.annotations, cps, series.n_obs)}


def run_series(name: str, cfg: dict) -> dict:
    """All detectors on one series; JSON-able. ``cfg``: the notebook config."""
    series = load_tcpd(name)
    z = prepare_series(series.values)
    margin = cfg["MARGIN"]
    out: dict[str, Any] = {"series": name, "n_obs": series.n_obs, "n_dim": series.n_dim,
                           "n_missing": series.n_missing, "annotations": series.annotations}
    runs = []
    for seed in range(cfg["SEEDS"]):
        t0 = time.perf_counter()
        res = detect(z, alacpd_config(cfg), seed=seed)
        row = _scores(series, res["change_points"], margin)
        row.update(seed=seed, n_warmup=res["n_warmup"], seconds=time.perf_counter() - t0,
                   online_seconds=res["online_seconds"], seconds_per_sample=res["seconds_per_sample"],
                   max_state_size=res["max_state_size"], n_online=len(res["events"]),
                   anomalies=int(sum(e["anomalous"] for e in res["events"])))
        runs.append(row)
    out["alacpd"] = {"runs": runs, "f1": float(np.mean([r["f1"] for r in runs])),
                     "cover": float(np.mean([r["cover"] for r in runs]))}
    out["zero"] = _scores(series, cb.zero(z), margin)
    out["default"], out["oracle"] = {}, {}
    t0 = time.perf_counter()
    for method in cb.METHODS:
        out["default"][method] = _scores(series, cb.detect_ruptures(z, method, **cb.default_setting(z, method)), margin)
        best: dict[str, Any] = {}
        for setting in cb.oracle_grid(z, method):
            s = _scores(series, cb.detect_ruptures(z, method, **setting), margin)
            for metric in METRICS:
                if metric not in best or s[metric] > best[metric]:
                    best[metric] = s[metric]
                    best[f"{metric}_setting"] = setting
                    best[f"{metric}_cps"] = s["cps"]
        out["oracle"][method] = best
    out["baseline_seconds"] = time.perf_counter() - t0
    return out


def score_table(results: Sequence[dict], metric: str, protocol: str = "default") -> pd.DataFrame:
    """Series x method scores: ALACPD (mean over seeds), the ruptures methods under ``protocol``, zero."""
    if metric not in METRICS or protocol not in ("default", "oracle"):
        raise ValueError(f"metric must be one of {METRICS} and protocol 'default' or 'oracle'")
    rows = {}
    for r in results:
        row = {"alacpd": r["alacpd"][metric]}
        row.update({m: r[protocol][m][metric] for m in cb.METHODS})
        row["zero"] = r["zero"][metric]
        rows[r["series"]] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def average_ranks(table: pd.DataFrame) -> pd.Series:
    """Mean over series of each method's rank (1 = best score; ties share the mean rank)."""
    return table.rank(axis=1, ascending=False, method="average").mean(axis=0)


def claim_verdicts(results: Sequence[dict], on_par: float) -> dict:
    """The pre-written rules, under the default protocol.

    Claim 1 holds if ALACPD's average covering rank is the best (lowest; a tie counts as first).
    Claim 2 holds if ALACPD's mean F1 is within ``on_par`` (absolute) of the best mean F1 of
    the other methods, or above it.
    """
    cover = average_ranks(score_table(results, "cover"))
    f1 = score_table(results, "f1")
    f1_mean = f1.mean(axis=0)
    best_other = f1_mean.drop("alacpd").idxmax()
    return {
        "cover_ranks": cover.to_dict(), "f1_ranks": average_ranks(f1).to_dict(), "f1_means": f1_mean.to_dict(),
        "cover_means": score_table(results, "cover").mean(axis=0).to_dict(),
        "claim1": bool(cover["alacpd"] <= cover.drop("alacpd").min()),
        "claim2": bool(f1_mean["alacpd"] >= f1_mean[best_other] - on_par),
        "best_cover_other": cover.drop("alacpd").idxmin(), "best_f1_other": best_other,
    }


# -- figures -----------------------------------------------------------------------------------

def plot_series_grid(results: Sequence[dict], baseline: str = "binseg", ncols: int = 4) -> plt.Figure:
    """One panel per series: the z-scored series (first channel), every annotator's change points
    (grey; darker where annotators agree), ALACPD's (seed 0, red) and ``baseline``'s at its
    default setting (blue, short marks at the bottom). Shaded: ALACPD's warm-up."""
    n = len(results)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 1.9 * nrows), squeeze=False)
    for ax, r in zip(axes.flat, results):
        z = prepare_series(load_tcpd(r["series"]).values)
        ax.plot(z[:, 0], color="k", lw=0.7)
        for cps in r["annotations"].values():
            for c in cps:
                ax.axvline(c, color="0.5", alpha=0.35, lw=1.5)
        for c in r["alacpd"]["runs"][0]["cps"]:
            ax.axvline(c, color="tab:red", ls="--", lw=1)
        lo = z[:, 0].min()
        ax.plot(r["default"][baseline]["cps"], [lo] * len(r["default"][baseline]["cps"]), "|", color="tab:blue", ms=8)
        ax.axvspan(0, r["alacpd"]["runs"][0]["n_warmup"], color="tab:orange", alpha=0.12)
        ax.set_title(f"{r['series']} (n={r['n_obs']})  F1 {r['alacpd']['f1']:.2f} cov {r['alacpd']['cover']:.2f}",
                     fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes.flat[n:]:
        ax.axis("off")
    fig.suptitle(f"TCPD series: annotations (grey), ALACPD (red dashes), {baseline} default (blue marks), "
                 "warm-up (orange)", fontsize=10)
    fig.tight_layout()
    return fig


def rank_frame(results: Sequence[dict]) -> pd.DataFrame:
    """Average rank of every method per (metric, protocol): rows = methods, columns = 'cover default', ..."""
    cols = {}
    for protocol in ("default", "oracle"):
        for metric in METRICS:
            cols[f"{metric} ({protocol})"] = average_ranks(score_table(results, metric, protocol))
    return pd.DataFrame(cols)


def plot_rank_table(results: Sequence[dict]) -> plt.Figure:
    """The average-rank table as a heat map (lower = better; ALACPD's setting is fixed in both protocols)."""
    frame = rank_frame(results)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    im = ax.imshow(frame.values, cmap="viridis_r", aspect="auto")
    ax.set_xticks(range(frame.shape[1]), frame.columns, fontsize=8)
    ax.set_yticks(range(frame.shape[0]), frame.index, fontsize=8)
    for i in range(frame.shape[0]):
        for j in range(frame.shape[1]):
            ax.text(j, i, f"{frame.values[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="w" if frame.values[i, j] > frame.values.mean() else "k")
    fig.colorbar(im, ax=ax, label="average rank (1 = best)")
    ax.set_title(f"Average rank over {len(results)} TCPD series (6 methods)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_time_per_sample(results: Sequence[dict]) -> plt.Figure:
    """ALACPD's online wall time per sample (ms, mean over seeds) against series length."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    n = [r["n_obs"] for r in results]
    ms = [1000 * np.mean([x["seconds_per_sample"] for x in r["alacpd"]["runs"]]) for r in results]
    ax.scatter(n, ms)
    for x, y, r in zip(n, ms, results):
        ax.annotate(r["series"], (x, y), fontsize=6)
    ax.set(xscale="log", xlabel="series length (observations)", ylabel="ms per online sample",
           title="ALACPD: online time per sample (test + adaptation)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
