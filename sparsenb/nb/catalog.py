"""The notebooks sparsenb ships: their papers, claims, profiles and gallery rows.

Each notebook's settings are data, ``sparsenb/experiments/specs/<stem>.json``
(typed settings with help, whose defaults are the ``cpu`` profile; the other
profiles written as changes; title, paper, claim, run-time estimates), and its
README gallery rows are in the spec too, their numbers formatted by the
``OURS`` of its experiment module; this module
builds a :class:`Notebook` of each into :data:`NOTEBOOKS`, so that ``sparsenb
list`` can show them without running anything and the notebook's ``parameters``
cell stays literals only. A notebook resolves its settings with::

    cfg = snb.nb.settings("01_set_rigl", globals())   # = resolve("01_set_rigl", PROFILE, {"EPOCHS": EPOCHS, ...})

Profiles: ``smoke`` (seconds, CI), ``cpu`` (minutes, offline, the committed
record) and ``paper`` (the paper's setting; full data, meant for a GPU).
An override that is not ``None`` replaces the profile's value, after the
check of :mod:`sparsenb.nb.params` (name, type, list shape), so a bad value stops
the settings cell with one line instead of failing cells later.

``Notebook.minutes`` holds estimates for the profiles without a committed
record; the ``cpu`` profile's run time is measured by its record
(:func:`sparsenb.nb.gallery.run_time_text`), the one source for README,
``sparsenb list`` and the notebook's title cell.
"""
from __future__ import annotations

import functools
import importlib
from typing import Any

from . import params
from ..experiments.spec import SPECS, GalleryRow, Notebook, load_spec, settings_class

__all__ = ["Notebook", "GalleryRow", "NOTEBOOKS", "INTERACTIVE", "notebook", "notebooks", "resolve", "Config"]


def notebook(stem: str) -> Notebook:
    """The :class:`Notebook` of ``specs/<stem>.json``; each gallery row's number is formatted by the
    ``OURS[claim_id]`` of the notebook's experiment module."""
    spec = load_spec(stem)
    ours = importlib.import_module(spec["module"]).OURS
    missing = [r["claim_id"] for r in spec["gallery"] if r["claim_id"] not in ours]
    if missing:
        raise ValueError(f"{spec['module']}.OURS has no formatter for the gallery rows {missing} of specs/{stem}.json")
    rows = [GalleryRow(r["method"], r["claim"], ours[r["claim_id"]], r["paper"], claim_id=r["claim_id"])
            for r in spec["gallery"]]
    return Notebook(stem=stem, title=spec["title"], paper=spec["paper"], claim=spec["claim"],
                    config=settings_class(stem), profiles=spec["profiles"], minutes=spec["minutes"], gallery=rows,
                    summary=spec.get("summary", ""))


@functools.lru_cache(maxsize=None)
def notebooks() -> dict[str, Notebook]:
    """``{stem: Notebook}`` of every spec file, ordered by notebook number (built once, on first use)."""
    return {p.stem: notebook(p.stem) for p in sorted(SPECS.glob("*.json"))}


def __getattr__(name: str) -> Any:
    """``NOTEBOOKS`` is built on first access: building it imports every experiment module, and an
    experiment module that imports :mod:`sparsenb.nb` (for its claim rules) must not wait for itself."""
    if name == "NOTEBOOKS":
        return notebooks()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Notebooks for exploring, not reproducing: no profiles, no record, no claims. They are opened in
# JupyterLab; the smoke tests execute them headlessly with papermill, and `sparsenb run` refuses them.
INTERACTIVE: dict[str, str] = {
    "00_explore": "interactive explorer: per-layer densities and a layer's mask under static / SET / RigL, "
                  "live on digits (ipywidgets; logic in sparsenb.nb.explorer)",
}


class Config(dict):
    """A dict of resolved settings that shows itself as a table in Jupyter."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"no setting {key!r}; settings are {sorted(self)}") from None

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td><code>{k}</code></td><td>{v!r}</td></tr>" for k, v in self.items())
        return f"<table><tr><th>setting</th><th>value</th></tr>{rows}</table>"


def resolve(stem: str, profile: str, overrides: dict[str, Any] | None = None) -> Config:
    """The settings of ``profile`` for notebook ``stem``, with non-``None`` overrides applied.

    Overrides are checked first (:func:`sparsenb.nb.params.check`): an unknown name, a wrong type or a
    scalar where a list belongs raises :class:`~sparsenb.nb.params.ParameterError` (a ``ValueError``)
    with a one-line message, before any work starts.
    """
    if stem not in notebooks():
        raise ValueError(f"unknown notebook {stem!r}; known: {sorted(notebooks())}")
    nb = notebooks()[stem]
    if profile not in nb.profiles:
        raise ValueError(f"unknown PROFILE {profile!r} for {stem}; choose one of {sorted(nb.profiles)}")
    cfg = Config(nb.profiles[profile], PROFILE=profile)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    spec = params.notebook_spec(stem)
    params.check({k: p for k, p in spec.items() if k in cfg}, given, where=stem, profile=profile)
    cfg.update(given)
    return cfg


def settings(stem: str, namespace: dict[str, Any]) -> Config:
    """The settings a notebook runs with: ``resolve(stem, PROFILE, overrides)`` where the overrides are
    the notebook's parameters found in ``namespace`` (pass ``globals()``), so a settings cell names
    each parameter once::

        cfg = snb.nb.settings("01_set_rigl", globals())

    ``PROFILE`` comes from ``namespace``; a parameter left at ``None`` takes the profile's value;
    names no profile has (``OUT_DIR``, ``DEVICE``, ``PROGRESS`` ...) are not settings and are skipped.
    ``THREADS`` is a setting of every notebook; :class:`~sparsenb.nb.record.Run` applies it.
    """
    if "PROFILE" not in namespace:
        raise ValueError(f"{stem}: no PROFILE in the namespace given to settings(); pass globals() from the notebook")
    nb = notebooks().get(stem)
    if nb is None:
        raise ValueError(f"unknown notebook {stem!r}; known: {sorted(notebooks())}")
    known = {k for prof in nb.profiles.values() for k in prof}
    overrides = {k: namespace[k] for k in sorted(known) if k in namespace}
    return resolve(stem, namespace["PROFILE"], overrides)
