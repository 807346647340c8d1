"""Notebook tooling: run record, claims, catalog of notebooks, gallery, plots and the CLI.

What a notebook calls::

    from sparsenb import nb
    cfg = nb.settings("01_set_rigl", globals())    # PROFILE and the parameters cell's values
    run = nb.Run(OUT_DIR, cfg)
    nb.record("rigl/0.9/test_acc", 0.97); nb.claim("RigL >= SET", holds=True)

Needs the ``notebooks`` extra (pandas, matplotlib, papermill ...).
"""
from . import catalog, claims, params, plots
from ..experiments.common import summarize, train_run
from .notebook import compare_table, show_source
from .catalog import settings
from .record import Run, claim, record

__all__ = ["Run", "settings", "record", "claim", "catalog", "claims", "params", "plots", "compare_table", "show_source", "train_run",
           "summarize"]
