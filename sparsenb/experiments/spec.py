"""How an experiment describes its notebook: typed settings, profiles and README gallery rows.

A notebook's settings are data, ``sparsenb/experiments/specs/<stem>.json``::

    {"stem": "07_ctre", "module": "sparsenb.experiments.ctre", "title": ..., "paper": ..., "claim": ...,
     "minutes": {"smoke": 0.3, "paper": 1500},
     "settings": {"EPOCHS": {"type": "int | dict", "default": {"madelon": 40, "Yale": 150},
                             "help": "training epochs ..."}, ...},        # the defaults are the cpu profile
     "profiles": {"smoke": {"EPOCHS": 4, ...}, "cpu": {}, "paper": {...}}}   # changes from the defaults

:func:`settings_class` turns the ``settings`` into one frozen dataclass per notebook (typed,
with each field's help in ``field.metadata["help"]``); the experiment module binds it
(``Settings = settings_class("07_ctre")``) and holds the notebook's README rows (``GALLERY``).
:class:`Notebook` resolves every profile to its full settings (``Notebook.profiles[name]``,
what a run records and hashes); :mod:`sparsenb.nb.catalog` builds one per spec file.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = ["Notebook", "GalleryRow", "SPECS", "load_spec", "settings_class", "setting", "settings_help", "acc_text"]

SPECS = Path(__file__).with_name("specs")
"""The folder of the notebooks' spec files, ``<stem>.json``."""


def setting(default: Any, help: str, hashed: bool = True) -> Any:
    """A config field with its default and one line of help (``field.metadata["help"]``).

    ``hashed=False`` (spec key ``"hashed": false``) marks a setting that a record neither stores in its
    ``config`` nor hashes into its ``config_hash`` (``field.metadata["hashed"]``); see
    :attr:`Notebook.unhashed`. Lists and dicts get a fresh copy per instance (a frozen dataclass still
    holds them by reference).
    """
    meta = {"help": help, "hashed": hashed}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def load_spec(stem: str) -> dict[str, Any]:
    """The parsed ``specs/<stem>.json`` of notebook ``stem``."""
    path = SPECS / f"{stem}.json"
    if not path.exists():
        known = sorted(p.stem for p in SPECS.glob("*.json"))
        raise ValueError(f"no spec for notebook {stem!r} ({path}); known: {known}")
    return json.loads(path.read_text())


@functools.lru_cache(maxsize=None)
def settings_class(stem: str) -> type:
    """The frozen dataclass of notebook ``stem``'s settings, one field per entry of its spec's ``settings``:
    annotated with the spec's ``type``, defaulting to the ``cpu`` value, documented by its ``help``."""
    spec = load_spec(stem)
    fields = [(name, s["type"], setting(s["default"], s["help"], s.get("hashed", True)))
              for name, s in spec["settings"].items()]
    name = "".join(w.capitalize() for w in stem.split("_")[1:]) + "Settings"
    cls = dataclasses.make_dataclass(name, fields, frozen=True)
    cls.__module__ = spec["module"]
    cls.__doc__ = (f"Settings of notebooks/{stem}.ipynb (from specs/{stem}.json); the defaults are its cpu "
                   f"profile.\n\n" + "\n".join(f"{n}: {s['help']}" for n, s in spec["settings"].items()))
    return cls


def settings_help(config: type) -> dict[str, str]:
    """``{name: help}`` of every field of a config dataclass."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(config)}


@dataclass
class GalleryRow:
    """One README gallery row; ``ours(metrics)`` formats our number from results.json.

    The row finds its claim in results.json by ``claim_id``, a stable name that stays the same
    when the claim's text names another dataset or setting (the notebook passes it as
    ``claim(..., id=claim_id)``); records written before claims had ids are matched by text.
    """

    method: str
    claim: str  # the claim's text in the cpu profile (shown in the gallery)
    ours: Callable[[dict], str]
    paper_value: str
    claim_id: str = ""  # the ``id=`` the notebook passes to ``claim(...)``; records without ids match ``claim``


@dataclass
class Notebook:
    """A notebook: its paper and claim, typed settings, profiles, run-time estimates and gallery rows.

    ``profiles`` is given as ``{profile: {setting: value that differs from the config's default}}``
    (plus, rarely, ``"_omit": [settings the profile lacks]``, see :data:`OMIT`);
    after construction ``profiles`` holds the full settings of every profile (a dict per profile,
    in field order) and ``changes`` the differences as given. Unknown setting names raise.
    """

    stem: str
    title: str
    paper: str
    claim: str
    config: type  # the frozen settings dataclass (settings_class); its defaults are the cpu profile
    profiles: dict[str, dict[str, Any]]
    minutes: dict[str, float]  # estimates for the profiles without a committed record (cpu: measured, see gallery)
    gallery: list[GalleryRow] = field(default_factory=list)
    summary: str = ""  # what it reproduces, one line for the README's table of notebooks
    changes: dict[str, dict[str, Any]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names = {f.name for f in dataclasses.fields(self.config)}
        self.changes = self.profiles
        for profile, changed in self.changes.items():
            unknown = sorted(((set(changed) - {OMIT}) | set(changed.get(OMIT, ()))) - names)
            if unknown:
                raise ValueError(f"{self.stem}: profile {profile!r} sets {unknown}, which {self.config.__name__} "
                                 f"does not have; add the field to the config or fix the name")
        self.profiles = {profile: _resolve_profile(self.config, changed) for profile, changed in self.changes.items()}

    @property
    def unhashed(self) -> tuple[str, ...]:
        """Settings declared ``"hashed": false`` in the spec: a run applies them, but its record's ``config``
        and ``config_hash`` leave them out (:func:`sparsenb.nb.record.record_config`).

        Used for ``THREADS`` where a notebook's committed record predates it as a setting: the thread
        count is still recorded (``env.threads``) and checked against the profile's when a run decides
        whether it may write the committed record (:func:`sparsenb.nb.record.differences`)."""
        return tuple(f.name for f in dataclasses.fields(self.config) if not f.metadata.get("hashed", True))


OMIT = "_omit"
"""Key of a profile's changes that lists settings the profile does not have at all: a profile whose
committed record predates those settings keeps its settings (and so its config hash) unchanged."""


def _resolve_profile(config: type, changed: dict[str, Any]) -> dict[str, Any]:
    full = dataclasses.asdict(config(**{k: v for k, v in changed.items() if k != OMIT}))
    for name in changed.get(OMIT, ()):
        del full[name]
    return full


def acc_text(m: dict, key: str) -> str:
    """Gallery cell ``"mean ± std %"`` of ``<key>/test_acc_mean`` and ``_std`` in metrics ``m`` ("—" if absent)."""
    mean, std = m.get(f"{key}/test_acc_mean"), m.get(f"{key}/test_acc_std")
    if mean is None:
        return "—"
    return f"{100 * mean:.2f} ± {100 * (std or 0):.2f} %"
