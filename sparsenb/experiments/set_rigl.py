"""Notebook 01_set_rigl: its settings, README gallery rows and claim rules (its runs use
:func:`sparsenb.experiments.common.train_run`; the notebook shows the rest)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from .spec import acc_text, settings_class

__all__ = ["Settings", "OURS", "claims"]

Settings = settings_class("01_set_rigl")  # typed, frozen; from specs/01_set_rigl.json
OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "set_beats_static": lambda m: acc_text(m, "set/0.98"),
    "rigl_ge_set_at_max_sparsity": lambda m: acc_text(m, "rigl/0.98"),
    "sparse_near_dense_at_min_sparsity": lambda m: f"{acc_text(m, 'set/0.9')} / {acc_text(m, 'rigl/0.9')} vs {acc_text(m, 'dense/0.0')}",
    "sparse_near_dense_at_min_sparsity+sparse_init": lambda m: f"{acc_text(m, 'set+sparse_init/0.9')} / {acc_text(m, 'rigl+sparse_init/0.9')} vs {acc_text(m, 'dense/0.0')}",
}


def claims(cfg: Mapping[str, Any], summary: Sequence[Mapping], border: Mapping[str, float] | None,
           num_classes: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The notebook's recorded numbers and its claims.

    Args:
        cfg: the resolved settings (``SPARSITIES``, ``SPARSE_INITS``, ``SEEDS``, ``DATASET``).
        summary: :func:`sparsenb.nb.summarize` of the runs: one row per (``method``, ``sparsity``) with the
            test accuracy ``mean`` and ``std`` over seeds; methods are labelled by
            :func:`sparsenb.core.init.arm_label` (``set``, ``set+sparse_init`` ...), dense at sparsity 0.
        border: ``{"<method> @ <sparsity>": share of first-layer connections on the image border}``,
            or empty/None when the inputs are not square images.
        num_classes: for the chance-level rule of :mod:`sparsenb.nb.claims` (an arm at chance makes a
            comparison inconclusive, whatever the means say).

    Returns:
        ``(metrics, claims)``: ``{name: value}`` for :meth:`Run.record` and one dict of :meth:`Run.claim`
        keyword arguments per claim.

    Rules, on every init arm (the papers' init keeps the plain ids, another gets ``+<init>_init``):
    SET's mean accuracy > static's at every sparsity; RigL's >= SET's at the highest sparsity; the
    better of SET and RigL at the lowest sparsity is at most 0.5 points below dense. And SET and RigL
    both keep a smaller share of first-layer connections on the image border than static.
    """
    from ..core.init import arm_label
    from ..nb.claims import comparison

    acc = {(s["method"], s["sparsity"]): s for s in summary}
    m: dict[str, Any] = {}
    for (method, sparsity), s in acc.items():
        m[f"{method}/{sparsity}/test_acc_mean"], m[f"{method}/{sparsity}/test_acc_std"] = s["mean"], s["std"]
    m["seeds"], m["first_layer_border_share"] = cfg["SEEDS"], border
    out: list[dict[str, Any]] = []

    def arms(*pairs: tuple[str, float]) -> dict[str, float]:
        return {f"{a} @ {s:g}": acc[(a, s)]["mean"] for a, s in pairs}

    on = f"(LeNet-300-100, {cfg['DATASET']})"
    dense = acc[("dense", 0.0)]["mean"]
    smin, smax = min(cfg["SPARSITIES"]), max(cfg["SPARSITIES"])
    for init in cfg["SPARSE_INITS"]:
        def a(method: str, init: str = init) -> str:
            return arm_label(method, init)
        tag, sid = ("", "") if init == "dense" else (f" (sparsity-aware init {init!r})", f"+{init}_init")
        set_wins = all(acc[(a("set"), s)]["mean"] > acc[(a("static"), s)]["mean"] for s in cfg["SPARSITIES"])
        state, reason = comparison(set_wins, arms(*[(a(x), s) for s in cfg["SPARSITIES"] for x in ("set", "static")]),
                                   num_classes)
        out.append(dict(text=f"SET beats static sparse at every sparsity {on}" + tag, holds=set_wins,
                        id="set_beats_static" + sid, state=state, reason=reason,
                        detail=", ".join(f"{s:g}: SET {acc[(a('set'), s)]['mean']:.4f} vs static "
                                         f"{acc[(a('static'), s)]['mean']:.4f}" for s in cfg["SPARSITIES"])))
        rigl_ge = acc[(a("rigl"), smax)]["mean"] >= acc[(a("set"), smax)]["mean"]
        state, reason = comparison(rigl_ge, arms((a("rigl"), smax), (a("set"), smax)), num_classes)
        out.append(dict(text=f"RigL >= SET at {100 * smax:g}% sparsity {on}" + tag, holds=rigl_ge,
                        id="rigl_ge_set_at_max_sparsity" + sid, state=state, reason=reason,
                        detail=f"RigL {acc[(a('rigl'), smax)]['mean']:.4f} vs SET {acc[(a('set'), smax)]['mean']:.4f}"))
        best = max(acc[(a("set"), smin)]["mean"], acc[(a("rigl"), smin)]["mean"])
        state, reason = comparison(dense - best <= 0.005, arms(("dense", 0.0), (a("set"), smin), (a("rigl"), smin)),
                                   num_classes)
        out.append(dict(text=f"Sparse (best of SET, RigL) within 0.5 points of dense at {100 * smin:g}% sparsity {on}"
                             + tag, holds=dense - best <= 0.005,
                        id="sparse_near_dense_at_min_sparsity" + sid, state=state, reason=reason,
                        detail=f"best sparse {best:.4f} vs dense {dense:.4f} (gap {100 * (dense - best):.2f} points)"))
    border_claim = f"SET and RigL move input connections off the image border onto the digit area {on}"
    if border:
        b = {k.split(" @")[0]: v for k, v in border.items()}
        out.append(dict(text=border_claim, holds=b["set"] < b["static"] and b["rigl"] < b["static"],
                        id="connections_leave_border",
                        detail=", ".join(f"{k}: {100 * v:.1f}% of first-layer connections on the border"
                                         for k, v in b.items())))
    else:
        out.append(dict(text=border_claim, holds=None, id="connections_leave_border", state="not evaluated",
                        reason=f"the inputs of {cfg['DATASET']} are not square images, so they have no border"))
    return m, out
