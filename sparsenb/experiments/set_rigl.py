"""Notebook 01_set_rigl: its settings and README gallery rows (its runs use
:func:`sparsenb.experiments.common.train_run`; the notebook shows the rest)."""
from __future__ import annotations

from .spec import acc_text, settings_class

__all__ = ["Settings", "OURS"]

Settings = settings_class("01_set_rigl")  # typed, frozen; from specs/01_set_rigl.json
OURS = {  # the README gallery's number of each claim id in the spec, from results.json's metrics m
    "set_beats_static": lambda m: acc_text(m, "set/0.98"),
    "rigl_ge_set_at_max_sparsity": lambda m: acc_text(m, "rigl/0.98"),
    "sparse_near_dense_at_min_sparsity": lambda m: f"{acc_text(m, 'set/0.9')} / {acc_text(m, 'rigl/0.9')} vs {acc_text(m, 'dense/0.0')}",
    "sparse_near_dense_at_min_sparsity+sparse_init": lambda m: f"{acc_text(m, 'set+sparse_init/0.9')} / {acc_text(m, 'rigl+sparse_init/0.9')} vs {acc_text(m, 'dense/0.0')}",
}
