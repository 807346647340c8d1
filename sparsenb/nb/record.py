"""Results of a notebook run: metrics, claims, config hash, provenance.

``results/<notebook>/<profile>/results.json``::

    {"notebook": "01_set_rigl", "profile": "cpu", "config": {...}, "config_hash": "1a2b3c4d5e6f",
     "metrics": {"rigl/0.9/test_acc_mean": 0.971, ...},
     "claims": [{"text": "RigL >= SET at 98% sparsity", "holds": true, "detail": "..."}],
     "env": {"torch": "...", "numpy": "...", "device": "cpu", "threads": 1, "cpu": "AMD EPYC", "cpu_capability": "AVX512",
             "code": {"commit": "6a55e55...", "dirty": false}, "packages": {...}, ...},
     "started": "2026-12-06T02:40:00+00:00", "finished": "2026-12-06T02:46:10+00:00", "seconds": 370.2,
     "work": {"units": 30, "units_from_cache": 0, "unit_seconds": 365.1}}

A claim's ``state`` is ``held``, ``not held``, ``inconclusive`` or ``not evaluated`` (the last
two with a ``reason``; see :mod:`sparsenb.nb.claims`); ``holds`` is true/false for the first two and
null otherwise. Records written before states existed have only ``holds``
(:func:`sparsenb.nb.claims.state_of` reads both).

``seconds`` is the wall time of this execution; ``work`` counts the cached
units of work and the compute seconds they took when first run (a resumed run
reads most of them from the cache, so ``seconds`` alone would understate it).
``env.code`` is the git commit of the package and whether ``sparsenb/`` or
``notebooks/`` had uncommitted changes (or, outside a git checkout, the
installed package version).

**A run never destroys a record.** Nothing is written when a :class:`Run`
starts. While it runs, ``record``/``claim`` update ``results.partial.json``
and figures go to ``figures.partial/`` in the results folder; only
:meth:`Run.finish` (the last line of every notebook's record cell) moves the
figures into place and replaces ``results.json`` atomically (temp file +
rename). An interrupted or failing run leaves the previous record as it was.

**The committed record is written only on purpose.** Without an explicit
folder, a run goes to ``results/<notebook>/<profile>/`` (and
``figures/<notebook>/<profile>/``) only if it is an *unmodified profile run*:
its config equals the catalog profile's resolved config (same
:func:`config_hash`), it uses the profile's thread count (the config's
``THREADS``, else 1; ``0`` = torch's default, not checked) and, for every
profile but ``paper``, the CPU. Thread count and device are checked because
both change float results (a different reduction order in matrix products).
Parameters that cannot change a number (``PROGRESS``, ``OUT_DIR``,
``FIG_DIR``) are not compared. Any other run goes to the git-ignored scratch
folders ``results/_scratch/<notebook>/<profile>-<config hash>/`` and
``figures/_scratch/...`` (with ``-threads<N>``/``-<device>`` appended when
those differ). Passing the canonical folder explicitly for a modified run
raises :class:`RecordProtectedError`, unless the environment variable
``SPARSENB_RECORD=1`` (``sparsenb run --record``) says it is on purpose.

Runs resume: the result of each unit of work (one training run) is cached
under ``runs/<config hash>/<key>.json`` in the results folder by
:meth:`Run.cached`, so two configs never share a cache file; re-running the
notebook with the same config skips the units already done.
"""
from __future__ import annotations

import datetime
import functools
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .claims import HELD, NOT_HELD, check_state

__all__ = ["Run", "record", "claim", "config_hash", "record_config", "write_json", "current_run", "project_root",
           "destination", "Destination", "RecordProtectedError", "cache_status", "SCRATCH",
           "NON_NUMERIC_PARAMETERS", "RECORD_ENV"]

_CURRENT: "Run | None" = None

SCRATCH = "_scratch"
"""Sub-folder of ``results/`` and ``figures/`` for runs that are not an unmodified profile run (git-ignored)."""

NON_NUMERIC_PARAMETERS = ("PROGRESS", "OUT_DIR", "FIG_DIR")
"""Notebook parameters that cannot change a number: a run that changes only these is still a profile run."""

RECORD_ENV = "SPARSENB_RECORD"
"""``SPARSENB_RECORD=1`` lets a modified run write the canonical folder (``sparsenb run --record``)."""

ANY_DEVICE_PROFILES = ("paper",)
"""Profiles whose canonical record may come from any device; every other profile's from the CPU."""

RECORD_PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "pandas", "matplotlib", "mlxtend", "sktime",
                   "torch-geometric", "pillow", "papermill")
"""Packages whose versions ``results.json`` stores under ``env.packages`` (those installed)."""


def project_root() -> Path:
    """The source checkout holding the package (``results/``, ``figures/``...), else the cwd."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").exists() else Path.cwd()


def config_hash(config: dict) -> str:
    """First 12 hex digits of the sha256 of the config as sorted JSON."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def record_config(notebook: str, config: dict) -> dict:
    """The part of ``config`` a record of ``notebook`` stores and hashes: every setting but those its spec
    declares ``"hashed": false`` (:attr:`sparsenb.experiments.spec.Notebook.unhashed`, e.g. ``THREADS``
    of a notebook whose committed record predates that setting). Unknown notebooks: ``config`` unchanged."""
    from .catalog import notebooks
    nb = notebooks().get(notebook)
    skip = set(nb.unhashed) if nb else set()
    return {k: v for k, v in config.items() if k not in skip}


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


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                          text=True, timeout=10, check=True).stdout.strip()


def code_version() -> dict:
    """``{"commit", "dirty"}`` of the git checkout holding the package (dirty: uncommitted changes in
    ``sparsenb/``, ``notebooks/``, ``pyproject.toml`` or ``constraints.txt``), else ``{"version"}``."""
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "sparsenb", "notebooks",
                     "pyproject.toml", "constraints.txt")
        return {"commit": commit, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        from importlib import metadata
        try:
            return {"version": metadata.version("sparsenb")}
        except metadata.PackageNotFoundError:
            from . import __version__
            return {"version": __version__}


@functools.lru_cache(maxsize=1)
def _package_digest() -> bytes:
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.digest()


def source_hash(notebook: str | None = None) -> str:
    """First 12 hex digits of the sha256 of the code that computes a notebook's runs.

    That is the package's Python sources (relative paths and contents), the versions of the
    installed :data:`RECORD_PACKAGES` (a new torch can change results as much as a new sparsenb)
    and, given a notebook stem, the code cells of ``notebooks/<stem>.ipynb`` as saved (when that
    file exists). :meth:`Run.cached` stores it with every cached run and reuses a run only when it
    matches: the config hash cannot see a change of the code that computed the result.
    """
    h = hashlib.sha256(_package_digest())
    h.update(json.dumps(_packages(), sort_keys=True).encode())
    path = project_root() / "notebooks" / f"{notebook}.ipynb" if notebook else None
    if path is not None and path.is_file():
        for cell in json.loads(path.read_text()).get("cells", []):
            if cell.get("cell_type") == "code":
                source = cell.get("source", "")
                h.update(("".join(source) if isinstance(source, list) else source).encode() + b"\0")
    return h.hexdigest()[:12]


def _packages() -> dict:
    from importlib import metadata
    out = {}
    for name in RECORD_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _env(device: str, threads: int) -> dict:
    import numpy
    return {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": numpy.__version__,
            "device": device, "threads": threads, "platform": platform.platform(), "cpu": _cpu_model(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "code": code_version(), "packages": _packages()}


class RecordProtectedError(ValueError):
    """A modified run was pointed at the committed record's folder."""


@dataclass(frozen=True)
class Destination:
    """Where a run's results and figures go, and why.

    ``canonical`` is True for an unmodified profile run; ``differences`` lists what makes a run
    modified, e.g. ``["DATASET digits (profile: mnist5k)", "threads 2 (profile: 1)"]``.
    """

    out_dir: Path
    fig_dir: Path
    canonical: bool
    differences: tuple[str, ...]
    canonical_out: Path
    canonical_fig: Path


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def differences(notebook: str, profile: str, config: dict, threads: int, device: str) -> list[str]:
    """What separates a run from the unmodified ``profile`` run of ``notebook`` (empty: nothing)."""
    from .catalog import NOTEBOOKS
    nb = NOTEBOOKS.get(notebook)
    if nb is None or profile not in nb.profiles:
        return [f"{notebook} has no catalog profile {profile!r}"]
    full = dict(nb.profiles[profile], PROFILE=profile)
    config, expected = record_config(notebook, config), record_config(notebook, full)
    out = [f"{k} {_short(config.get(k))} (profile: {_short(expected.get(k))})"
           for k in sorted(set(config) | set(expected)) if config.get(k) != expected.get(k)]
    if config_hash(config) != config_hash(expected) and not out:
        out.append("config differs from the profile's")
    want = full.get("THREADS", 1)
    if want and threads != want:
        out.append(f"threads {threads} (profile: {want})")
    kind = str(device).split(":")[0]
    if profile not in ANY_DEVICE_PROFILES and kind != "cpu":
        out.append(f"device {kind} (profile: cpu)")
    return out


def destination(notebook: str, profile: str, config: dict, threads: int, device: str = "cpu",
                root: Path | None = None) -> Destination:
    """Default results and figures folders of a run: canonical for an unmodified profile run, else scratch."""
    root = root or project_root()
    diff = differences(notebook, profile, config, threads, device)
    canon_out, canon_fig = root / "results" / notebook / profile, root / "figures" / notebook / profile
    if not diff:
        return Destination(canon_out, canon_fig, True, (), canon_out, canon_fig)
    name = f"{profile}-{config_hash(record_config(notebook, config))}"
    for d in diff:
        if d.startswith("threads "):
            name += f"-threads{threads}"
        if d.startswith("device "):
            name += f"-{str(device).split(':')[0]}"
    return Destination(root / "results" / SCRATCH / notebook / name, root / "figures" / SCRATCH / notebook / name,
                       False, tuple(diff), canon_out, canon_fig)


def cache_status(out_dir: str | os.PathLike, chash: str, notebook: str | None = None) -> tuple[int, int | None]:
    """``(units cached for config hash chash in out_dir by today's code, total units or None)``; the
    total is known when ``out_dir/results.json`` is a finished record of the same config."""
    out_dir = Path(out_dir)
    code = source_hash(notebook)
    done = sum(_reusable(_read_cached(p), chash, code) for p in (out_dir / "runs" / chash).glob("*.json"))
    total = None
    try:
        rec = json.loads((out_dir / "results.json").read_text())
        if rec.get("config_hash") == chash:
            total = rec.get("work", {}).get("units")
    except (OSError, ValueError):
        pass
    return done, total


def _read_cached(path: Path) -> dict:
    """A cached unit's JSON, or {} if it cannot be read."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _reusable(saved: dict, chash: str, code: str) -> bool:
    """A cached unit is reused only if computed with config hash ``chash`` by code ``code`` (:func:`source_hash`)."""
    return saved.get("config_hash") == chash and saved.get("code") == code


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


class Run:
    """One execution of a notebook: where results and figures go, and what was measured.

    Nothing is written at construction; :meth:`finish` writes ``results.json`` (see the module docstring).

    Args:
        notebook: notebook stem, e.g. ``"01_set_rigl"``.
        profile: ``"smoke"``, ``"cpu"`` or ``"paper"``.
        config: the resolved settings (JSON-serialisable); :func:`record_config` of them is stored and
            hashed into ``config_hash``. Its ``THREADS`` (if given and not 0) is applied here,
            ``torch.set_num_threads(THREADS)``, the one place a notebook's thread count is set.
        out_dir: results folder; ``None`` = ``results/<notebook>/<profile>`` for an unmodified profile
            run, else ``results/_scratch/<notebook>/<profile>-<config hash>``.
        fig_dir: figures folder; ``None`` = ``figures/...`` chosen the same way.
        device: the device the run uses (stored in ``env``; part of the profile-run test).

    Raises:
        RecordProtectedError: ``out_dir``/``fig_dir`` is the committed record's folder but the run is
            not an unmodified profile run (and ``SPARSENB_RECORD=1`` is not set).
    """

    def __init__(self, notebook: str, profile: str, config: dict, out_dir: str | os.PathLike | None = None,
                 fig_dir: str | os.PathLike | None = None, device: str = "cpu"):
        global _CURRENT
        if config.get("THREADS"):
            torch.set_num_threads(int(config["THREADS"]))
        self.code = source_hash(notebook)  # the code computing this run's units, hashed once
        self.settings = dict(config)
        self.config = record_config(notebook, self.settings)
        self.hash = config_hash(self.config)
        threads = torch.get_num_threads()
        dest = destination(notebook, profile, self.settings, threads, str(device))
        on_purpose = os.environ.get(RECORD_ENV) == "1"
        default_out = dest.canonical_out if on_purpose else dest.out_dir
        default_fig = dest.canonical_fig if on_purpose else dest.fig_dir
        self.out_dir = Path(out_dir) if out_dir else default_out
        self.fig_dir = Path(fig_dir) if fig_dir else default_fig
        if not dest.canonical and not on_purpose:
            for given, canon in ((self.out_dir, dest.canonical_out), (self.fig_dir, dest.canonical_fig)):
                if _same(given, canon):
                    raise RecordProtectedError(
                        f"{canon} holds the committed {profile} record of {notebook}, and this run differs from "
                        f"the profile ({'; '.join(dest.differences)}): leave OUT_DIR/FIG_DIR unset (scratch "
                        f"folder) or choose another folder; to record it on purpose set {RECORD_ENV}=1 "
                        f"(sparsenb run --record)")
        self.destination = dest
        if not out_dir and not dest.canonical and not on_purpose:
            print(f"this run differs from the {profile} profile ({'; '.join(dest.differences)}): "
                  f"it writes the scratch folder {self.out_dir}, not the committed record")
        self.finished = False
        shutil.rmtree(self._staging, ignore_errors=True)  # figures of an earlier run that never finished
        self.t0 = time.perf_counter()
        self.data = {"notebook": notebook, "profile": profile, "config": self.config, "config_hash": self.hash,
                     "metrics": {}, "claims": [], "env": _env(str(device), threads),
                     "started": _now(), "finished": None, "seconds": 0.0,
                     "work": {"units": 0, "units_from_cache": 0, "unit_seconds": 0.0}}
        _CURRENT = self

    @property
    def path(self) -> Path:
        """``results.json``: written by :meth:`finish`."""
        return self.out_dir / "results.json"

    @property
    def partial_path(self) -> Path:
        """``results.partial.json``: the record so far, while the run is not finished."""
        return self.out_dir / "results.partial.json"

    @property
    def _staging(self) -> Path:
        return self.out_dir / "figures.partial"

    @property
    def metrics(self) -> dict:
        return self.data["metrics"]

    def record(self, name: str, value: Any) -> Any:
        """Store one number (or small list/dict) under ``name``."""
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
        """Return ``fn()``, cached in ``runs/<config hash>/<key>.json`` (resume support).

        A cached result is reused only when it was computed with this config and by the same
        package sources, package versions and notebook code cells (:func:`source_hash`); after a
        change of any of them it is computed again.
        """
        path = self.out_dir / "runs" / self.hash / f"{_safe(key)}.json"
        code = self.code
        if path.exists():
            saved = json.loads(path.read_text())
            if _reusable(saved, self.hash, code):
                self._add_work(saved.get("seconds", 0.0), cached=True)
                return saved["result"]
            if saved.get("config_hash") == self.hash:
                print(f"{key}: the cached result was computed by other sparsenb code or package versions "
                      f"(sources {saved.get('code', 'not recorded')}, now {code}); computing it again")
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
        write_json(path, {"config_hash": self.hash, "code": code, "key": key, "seconds": seconds,
                          "result": result})
        self._add_work(seconds, cached=False)
        return result

    def _add_work(self, seconds: float, cached: bool) -> None:
        w = self.data["work"]
        w["units"] += 1
        w["units_from_cache"] += int(cached)
        w["unit_seconds"] = round(w["unit_seconds"] + seconds, 1)
        self._write()

    def figure(self, fig: Any, name: str) -> None:
        """Save a matplotlib figure as ``<name>.png`` (110 dpi) and ``<name>.svg`` beside it.

        Both land in ``fig_dir`` when the run finishes (until then they wait in ``figures.partial/`` of
        the results folder). Returns None, so that a notebook cell ending in ``run.figure(fig, name)``
        shows the figure and no ``Out:`` line. The SVG carries no date and fixed element ids, so
        re-saving the same figure gives the same file.
        """
        import matplotlib

        folder = self.fig_dir if self.finished else self._staging
        folder.mkdir(parents=True, exist_ok=True)
        fig.savefig(folder / f"{name}.png", dpi=110, bbox_inches="tight")
        with matplotlib.rc_context({"svg.hashsalt": name}):
            fig.savefig(folder / f"{name}.svg", format="svg", bbox_inches="tight", metadata={"Date": None})

    def finish(self) -> None:
        """Move the figures into ``fig_dir`` and replace ``results.json`` (``self.path``) atomically.

        Returns None, like :meth:`figure`, so the notebook cell that calls it shows no ``Out:`` line.

        Call it once, after the last ``record``/``claim``; a later ``record`` or ``claim`` (re-running
        the cell in Jupyter) rewrites the finished ``results.json`` in place.
        """
        if self._staging.exists():
            self.fig_dir.mkdir(parents=True, exist_ok=True)
            for path in sorted(self._staging.iterdir()):  # the .png and .svg of every figure
                shutil.move(str(path), str(self.fig_dir / path.name))
            self._staging.rmdir()
        self.finished = True
        self.data["finished"] = _now()
        self._write()
        self.partial_path.unlink(missing_ok=True)

    def _write(self) -> None:
        self.data["seconds"] = round(time.perf_counter() - self.t0, 1)
        write_json(self.path if self.finished else self.partial_path, self.data)


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
