"""Results of a notebook run: metrics, claims, config hash, environment.

``results/<notebook>/<profile>/results.json``::

    {"notebook": "01_set_rigl", "profile": "cpu", "config": {...}, "config_hash": "1a2b3c4d5e6f",
     "metrics": {"rigl/0.9/test_acc_mean": 0.971, ...},
     "claims": [{"text": "RigL >= SET at 98% sparsity", "id": "rigl_vs_set", "state": "held",
                 "holds": true, "reason": "", "detail": "..."}],
     "env": {"torch": "...", "device": "cpu", ...}, "seconds": 412.3}

A claim's ``state`` is ``held``, ``not held``, ``inconclusive`` or ``not evaluated`` (the last
two with a ``reason``; see :mod:`sparsenb.nb.claims`); ``holds`` is true/false for the first two and
null otherwise. Records written before states existed have only ``holds``
(:func:`sparsenb.nb.claims.state_of` reads both).

``seconds`` is the wall time of this execution; ``work`` counts the cached
units of work and the compute seconds they took when first run (a resumed run
reads most of them from the cache, so ``seconds`` alone would understate it).

Every ``record``/``claim`` rewrites the file atomically (temp file + rename),
so an interrupted run never leaves a broken file. Runs resume: the result of
each unit of work (one training run) is cached under ``runs/<key>.json`` next
to results.json by :meth:`Run.cached`, tagged with the config hash; re-running
the notebook with the same config skips the units already done.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from .claims import HELD, NOT_HELD, check_state

__all__ = ["Run", "record", "claim", "config_hash", "write_json", "current_run", "project_root"]

_CURRENT: "Run | None" = None


def project_root() -> Path:
    """The source checkout holding the package (``results/``, ``figures/``...), else the cwd."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").exists() else Path.cwd()


def config_hash(config: dict) -> str:
    """First 12 hex digits of the sha256 of the config as sorted JSON."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically: a temp file in the same folder, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=False, default=_jsonable) + "\n")
    os.replace(tmp, path)


def _jsonable(x: Any) -> Any:
    if torch.is_tensor(x):
        return x.tolist()
    if hasattr(x, "item"):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"cannot store {type(x).__name__} in results.json")


def _env(device: str) -> dict:
    import numpy
    return {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": numpy.__version__,
            "device": device, "threads": torch.get_num_threads(), "platform": platform.platform()}


class Run:
    """One execution of a notebook: where results and figures go, and what was measured.

    Args:
        notebook: notebook stem, e.g. ``"01_set_rigl"``.
        profile: ``"smoke"``, ``"cpu"`` or ``"paper"``.
        config: the resolved settings (JSON-serialisable); hashed into ``config_hash``.
        out_dir: results folder; ``None`` = ``results/<notebook>/<profile>`` in the project.
        fig_dir: figures folder; ``None`` = ``figures/<notebook>/<profile>`` in the project.
        device: the device the run uses (stored in ``env``).
    """

    def __init__(self, notebook: str, profile: str, config: dict, out_dir: str | os.PathLike | None = None,
                 fig_dir: str | os.PathLike | None = None, device: str = "cpu"):
        global _CURRENT
        root = project_root()
        self.out_dir = Path(out_dir) if out_dir else root / "results" / notebook / profile
        self.fig_dir = Path(fig_dir) if fig_dir else root / "figures" / notebook / profile
        self.config = dict(config)
        self.hash = config_hash(self.config)
        self.t0 = time.perf_counter()
        self.data = {"notebook": notebook, "profile": profile, "config": self.config, "config_hash": self.hash,
                     "metrics": {}, "claims": [], "env": _env(str(device)), "seconds": 0.0,
                     "work": {"units": 0, "units_from_cache": 0, "unit_seconds": 0.0}}
        _CURRENT = self
        self._write()

    @property
    def path(self) -> Path:
        return self.out_dir / "results.json"

    @property
    def metrics(self) -> dict:
        return self.data["metrics"]

    def record(self, name: str, value: Any) -> Any:
        """Store one number (or small list/dict) under ``name`` and rewrite results.json."""
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"refusing to record non-finite value {value!r} for {name!r}")
        self.data["metrics"][name] = value
        self._write()
        return value

    def claim(self, text: str, holds: bool | None, detail: str = "", *, state: str | None = None,
              reason: str = "", id: str | None = None) -> bool:
        """Record the state of a paper's claim in this run; True if it held.

        Args:
            text: the claim as tested here, naming the dataset and setting actually used.
            holds: what the comparison says; alone (``state=None``) it gives ``"held"`` or ``"not held"``.
            detail: the numbers behind the verdict.
            state: ``"held"``, ``"not held"``, ``"inconclusive"`` or ``"not evaluated"``
                (:mod:`sparsenb.nb.claims`); the last two need a ``reason`` and store ``holds`` as null.
            reason: why the claim is inconclusive or not evaluated.
            id: a stable name of the claim, the same whatever the dataset (gallery rows find
                claims by it); defaults to ``text``. A claim replaces an earlier one with the same id.
        """
        if state is None and holds is None:
            raise ValueError(f"claim {text!r}: give holds=True/False, or a state with its reason")
        state = state or (HELD if holds else NOT_HELD)
        check_state(state, reason)
        if state in (HELD, NOT_HELD) and holds is not None and bool(holds) != (state == HELD):
            raise ValueError(f"claim {text!r}: holds={holds!r} contradicts state={state!r}")
        key = id or text
        self.data["claims"] = [c for c in self.data["claims"] if c.get("id", c["text"]) != key]
        self.data["claims"].append({"text": text, "id": key, "state": state,
                                    "holds": (state == HELD) if state in (HELD, NOT_HELD) else None,
                                    "reason": reason, "detail": detail})
        self._write()
        return state == HELD

    def cached(self, key: str, fn: Callable[[], dict]) -> dict:
        """Return ``fn()``, cached in ``runs/<key>.json`` for this config hash (resume support)."""
        path = self.out_dir / "runs" / f"{_safe(key)}.json"
        if path.exists():
            saved = json.loads(path.read_text())
            if saved.get("config_hash") == self.hash:
                self._add_work(saved.get("seconds", 0.0), cached=True)
                return saved["result"]
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
        write_json(path, {"config_hash": self.hash, "key": key, "seconds": seconds, "result": result})
        self._add_work(seconds, cached=False)
        return result

    def _add_work(self, seconds: float, cached: bool) -> None:
        w = self.data["work"]
        w["units"] += 1
        w["units_from_cache"] += int(cached)
        w["unit_seconds"] = round(w["unit_seconds"] + seconds, 1)
        self._write()

    def figure(self, fig: Any, name: str) -> Path:
        """Save a matplotlib figure as ``<fig_dir>/<name>.png`` and return the path."""
        self.fig_dir.mkdir(parents=True, exist_ok=True)
        path = self.fig_dir / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        return path

    def _write(self) -> None:
        self.data["seconds"] = round(time.perf_counter() - self.t0, 1)
        write_json(self.path, self.data)


def _safe(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in key)


def current_run() -> Run:
    if _CURRENT is None:
        raise RuntimeError("no Run is active: create one with sparsenb.Run(notebook, profile, config) first")
    return _CURRENT


def record(name: str, value: Any) -> Any:
    """``record(name, value)`` on the active :class:`Run`."""
    return current_run().record(name, value)


def claim(text: str, holds: bool | None, detail: str = "", *, state: str | None = None, reason: str = "",
          id: str | None = None) -> bool:
    """:meth:`Run.claim` on the active :class:`Run`."""
    return current_run().claim(text, holds, detail, state=state, reason=reason, id=id)
