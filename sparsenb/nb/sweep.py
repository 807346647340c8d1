"""``sparsenb sweep GRID``: run a notebook over a grid of parameters, locally or on a Ray cluster.

A grid file (TOML or YAML) holds one or more ``[[sweep]]`` blocks; each block expands to the
cartesian product of its ``grid`` lists, every cell also getting the fixed ``params``::

    gpus = 0                  # optional, default for every block: GPUs per cell (Ray backend only)
    cpus = 1                  # optional: CPUs per cell (Ray backend only)

    [[sweep]]
    notebook = "01_set_rigl"  # a stem in notebooks/, or a path to an .ipynb (relative to this file)
    profile = "smoke"         # a catalog profile, or a list of them (one more grid axis)
    params = { EPOCHS = 3 }   # fixed parameters of every cell of this block (optional)
    grid = { SPARSITIES = [[0.9], [0.95]], LR = [0.05, 0.1] }   # name -> list of values (4 cells here)
    gpus = 0.5                # optional: overrides the top-level value for this block

Seeds are a notebook parameter (``SEEDS`` in most notebooks): put them in ``grid`` or ``params``.

**Checked before any cell starts**: the file's keys (an unknown key names the closest valid one),
the notebooks and profiles, and every parameter value of every cell (:func:`sparsenb.nb.params.check`
and :func:`sparsenb.nb.catalog.resolve`). A problem is one line (:class:`GridError`; the CLI exits 2).

**Each cell** is one papermill run writing its own folder ``OUT/cells/<notebook>/<profile>-<hash>/``
(``hash``: the config hash of the resolved settings, as in results.json; for a notebook outside
the catalog, of its parameters); never the committed record. A cell whose folder already holds a
finished results.json of the same config hash is skipped, so re-running a sweep resumes it. A
failing cell does not stop the others; the failures are listed at the end (exit code 1).

**Results**: ``OUT/sweep.csv`` (and ``sweep.parquet`` if pyarrow is installed) is a tidy table with
one row per cell and numeric metric: ``cell, notebook, profile, <one column per swept or fixed
parameter>, metric, value`` (list values as JSON text). ``OUT/cells.csv`` has one row per cell with
its status (``ran``, ``skipped``, ``failed``) and error; ``OUT/sweep.png``/``.svg`` plots the
metrics that vary across cells.

**Backends**: ``local`` runs cells in a :class:`concurrent.futures.ProcessPoolExecutor` of ``jobs``
processes; ``ray`` submits each cell as a Ray task with ``num_cpus``/``num_gpus`` from the grid file
(``ray.init(address)``: ``None`` starts a local instance, ``"auto"`` joins the cluster of this node,
``"ray://host:10001"`` a remote one). The task returns the cell's results.json, which the driver
writes into its own cell folder, so the table needs no shared file system.
"""
from __future__ import annotations

import difflib
import itertools
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .cli import _leaves, _one_line
from .record import config_hash, project_root, record_config, write_json

__all__ = ["GridError", "Cell", "load_grid", "run_sweep", "tidy_table"]

TOP_KEYS = ("sweep", "gpus", "cpus")
BLOCK_KEYS = ("notebook", "profile", "params", "grid", "gpus", "cpus")
RESERVED = ("PROFILE", "OUT_DIR", "FIG_DIR")  # set by the sweep itself
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0",  # offline: no usage statistics
           "RAY_enable_metrics_collection": "0",  # no metrics export (needs ray[default] anyway)
           "RAY_agent_register_timeout_ms": "120000",  # a loaded machine starts Ray's agents slowly
           "RAY_raylet_start_wait_time_s": "120"}


class GridError(ValueError):
    """A grid file that cannot run; the message is one line that names the fix."""


@dataclass
class Cell:
    """One run of the sweep: a notebook, a profile and its parameters (JSON-serialisable)."""

    notebook: str  # stem, e.g. "01_set_rigl"
    path: str  # the .ipynb file
    profile: str
    params: dict[str, Any]  # the notebook parameters given by the grid file (fixed and swept)
    chash: str  # config hash: of the resolved settings (catalog notebooks) or of the parameters
    in_catalog: bool
    gpus: float = 0.0
    cpus: float = 1.0
    folder: str = ""  # set by run_sweep: OUT/cells/<notebook>/<profile>-<chash>
    status: str = ""  # "ran", "skipped" or "failed"
    error: str = ""
    seconds: float = 0.0
    record: dict | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"{self.notebook}/{self.profile}-{self.chash}"


def _read(path: Path) -> dict:
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            import tomllib
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(text)
            return data if data is not None else {}
    except Exception as e:  # the parsers' own messages name line and column
        raise GridError(f"{path}: not valid {path.suffix[1:].upper()}: {' '.join(str(e).split())}") from None
    raise GridError(f"{path}: a grid file ends in .toml, .yaml or .yml")


def _unknown(keys, allowed, where: str) -> None:
    for key in keys:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
            raise GridError(f"{where}: unknown key {key!r}; {hint}")


def _resources(block: dict, top: dict, where: str) -> tuple[float, float]:
    out = []
    for key, default in (("gpus", 0.0), ("cpus", 1.0)):
        value = block.get(key, top.get(key, default))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise GridError(f"{where}: {key} must be a number >= 0 (e.g. {key} = 1); got {value!r}")
        out.append(float(value))
    return out[0], out[1]


def _notebook_path(name: Any, base: Path, where: str) -> Path:
    if not isinstance(name, str) or not name:
        raise GridError(f"{where}: notebook must be a stem like \"01_set_rigl\" or a path to an .ipynb")
    if name.endswith(".ipynb"):
        path = Path(name) if Path(name).is_absolute() else base / name
    else:
        path = project_root() / "notebooks" / f"{name}.ipynb"
    if not path.is_file():
        stems = sorted(p.stem for p in (project_root() / "notebooks").glob("*.ipynb"))
        close = difflib.get_close_matches(name, stems, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "`sparsenb list` shows the notebooks"
        raise GridError(f"{where}: no notebook {name!r} (looked for {path}); {hint}")
    return path


def _expand(block: dict, top: dict, base: Path, where: str) -> list[Cell]:
    from . import params as P
    from .catalog import NOTEBOOKS, resolve

    if not isinstance(block, dict):
        raise GridError(f"{where}: each [[sweep]] entry is a table with notebook, profile, params, grid")
    _unknown(block, BLOCK_KEYS, where)
    path = _notebook_path(block.get("notebook"), base, where)
    stem = path.stem
    profiles = block.get("profile")
    profiles = [profiles] if isinstance(profiles, str) else profiles
    if not profiles or not all(isinstance(p, str) for p in profiles):
        raise GridError(f"{where}: profile must be a name or a list of names (e.g. profile = \"smoke\")")
    fixed, grid = block.get("params", {}), block.get("grid", {})
    for key, value in (("params", fixed), ("grid", grid)):
        if not isinstance(value, dict):
            raise GridError(f"{where}: {key} must be a table of NAME = value (e.g. {key} = {{ LR = 0.1 }})")
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise GridError(f"{where}: grid {name} must be a non-empty list of values "
                            f"(a list parameter needs a list of lists, e.g. [[0.9], [0.95]]); got {values!r}")
    both = sorted(set(fixed) & set(grid))
    if both:
        raise GridError(f"{where}: {both[0]} is in both params and grid; give it in one of them")
    for name in list(fixed) + list(grid):
        if name in RESERVED:
            raise GridError(f"{where}: {name} is set by the sweep (profile key, --out); remove it from the grid file")
    gpus, cpus = _resources(block, top, where)
    spec = P.notebook_spec(stem, path)
    in_catalog = stem in NOTEBOOKS
    cells = []
    for profile in profiles:
        if in_catalog and profile not in NOTEBOOKS[stem].profiles:
            raise GridError(f"{where}: {stem} has no profile {profile!r}; choose one of "
                            f"{', '.join(NOTEBOOKS[stem].profiles)}")
        for combo in itertools.product(*grid.values()):
            values = dict(fixed, **dict(zip(grid, combo)))
            try:
                P.check(spec, dict(values, PROFILE=profile), where=stem, profile=profile)
                if in_catalog:
                    keys = NOTEBOOKS[stem].profiles[profile]
                    chash = config_hash(record_config(stem, resolve(stem, profile, {k: v for k, v in values.items() if k in keys})))
                else:
                    chash = config_hash(dict(values, PROFILE=profile))
            except ValueError as e:  # ParameterError and resolve's unknown profile: one line each
                raise GridError(f"{where}: {e}") from None
            cells.append(Cell(stem, str(path), profile, values, chash, in_catalog, gpus, cpus))
    return cells


def load_grid(path: str | os.PathLike) -> list[Cell]:
    """The cells of the grid file at ``path``, every parameter checked; raises :class:`GridError`."""
    path = Path(path)
    if not path.is_file():
        raise GridError(f"no grid file at {path}; give a .toml or .yaml file (see README, Sweeps)")
    data = _read(path)
    if not isinstance(data, dict):
        raise GridError(f"{path}: the file must be a table with a [[sweep]] list")
    _unknown(data, TOP_KEYS, str(path))
    blocks = data.get("sweep")
    if isinstance(blocks, dict):
        blocks = [blocks]
    if not blocks or not isinstance(blocks, list):
        raise GridError(f"{path}: no [[sweep]] entries (YAML: a `sweep:` list); each names a notebook, profile and grid")
    cells: list[Cell] = []
    for i, block in enumerate(blocks):
        cells += _expand(block, data, path.parent, f"{path.name} sweep #{i + 1}")
    seen: dict[str, int] = {}
    for cell in cells:
        seen[cell.name] = seen.get(cell.name, 0) + 1
    dup = [n for n, k in seen.items() if k > 1]
    if dup:
        raise GridError(f"{path}: cell {dup[0]} appears {seen[dup[0]]} times (same settings); remove the repeat")
    return cells


def _finished(folder: Path, chash: str | None) -> dict | None:
    """The finished results.json in ``folder`` (of config hash ``chash`` if given), else None."""
    try:
        rec = json.loads((folder / "results.json").read_text())
    except (OSError, ValueError):
        return None
    if not rec.get("finished") or (folder / "results.partial.json").exists():
        return None
    if chash and rec.get("config_hash") != chash:
        return None
    return rec


def run_cell(cell: dict, kernel: str = "python3") -> dict:
    """Execute one cell (``Cell`` fields as a dict) with papermill; return status, error, seconds and
    the cell's results.json (None if it failed). Runs in a worker process or a Ray task."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    folder = Path(cell["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.partial.json").unlink(missing_ok=True)
    params = dict(cell["params"], PROFILE=cell["profile"], OUT_DIR=str(folder.resolve()),
                  FIG_DIR=str((folder / "figures").resolve()))
    executed = folder / f"{cell['notebook']}.ipynb"
    path = Path(cell["path"])
    if not path.is_file():  # a cluster node whose checkout lives elsewhere: its own notebooks/
        path = project_root() / "notebooks" / path.name
    t0 = time.perf_counter()
    error = ""
    try:
        pm.execute_notebook(str(path), str(executed), parameters=params, kernel_name=kernel,
                            cwd=str(path.parent.resolve()), progress_bar=False)
    except PapermillExecutionError as e:
        first = next((line for line in str(e.evalue).splitlines() if line.strip()), "")
        error = f"{e.ename}: {_one_line(first)} (cell {e.exec_count or e.cell_index}; {executed})"
    except Exception as e:  # kernel died or could not start
        error = f"{type(e).__name__}: {_one_line(e)} ({executed})"
    record = None if error else _finished(folder, cell["chash"] if cell["in_catalog"] else None)
    if not error and record is None:
        error = f"ran but left no finished results.json of config {cell['chash']} in {folder} (no run.finish()?)"
    return {"status": "failed" if error else "ran", "error": error, "record": record,
            "seconds": round(time.perf_counter() - t0, 1)}


def _local(todo: list[Cell], jobs: int, done: Callable[[Cell, dict], None]) -> None:
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_cell, _payload(c)): c for c in todo}
        for future in as_completed(futures):
            done(futures[future], _outcome(future.result))


def _outcome(get: Callable[[], dict]) -> dict:
    try:
        return get()
    except Exception as e:  # a worker that died (out of memory, killed): the sweep goes on
        return {"status": "failed", "error": f"worker lost: {type(e).__name__}: {_one_line(e)}", "record": None,
                "seconds": 0.0}


def _ray(todo: list[Cell], address: str | None, done: Callable[[Cell, dict], None]) -> None:
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import ray
    except ImportError:
        raise GridError("--backend ray needs Ray: pip install -c constraints.txt -e \".[sweep]\"") from None
    started = not ray.is_initialized()
    if started:
        # a local instance's workers inherit this environment; a cluster's nodes need sparsenb installed
        _start_ray(ray, address)
    try:
        task = ray.remote(run_cell)
        refs = {task.options(num_cpus=c.cpus, num_gpus=c.gpus, max_retries=0).remote(_payload(c)): c for c in todo}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            done(refs[ready[0]], _outcome(lambda: ray.get(ready[0])))
    finally:
        if started:
            ray.shutdown()


def _start_ray(ray, address: str | None) -> None:
    """``ray.init`` without dashboard; a local instance gets a second try, since on a loaded machine
    its raylet sometimes gives up waiting for its agent process (Ray 2.60: "timed out during startup")."""
    tries = 1 if address else 2
    for attempt in range(1, tries + 1):
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
            return
        except Exception as e:  # no cluster at the address, a node that did not start, ...
            ray.shutdown()
            if attempt == tries:
                where = f"join the Ray cluster at {address}" if address else "start a local Ray instance"
                raise GridError(f"could not {where}: {type(e).__name__}: {_one_line(e, 200)}") from None
            print(f"sweep: Ray did not start ({_one_line(e, 120)}); trying once more", file=sys.stderr)


def _payload(cell: Cell) -> dict:
    return {k: getattr(cell, k) for k in ("notebook", "path", "profile", "params", "chash", "in_catalog", "folder")}


def run_sweep(cells: list[Cell], out: str | os.PathLike, backend: str = "local", jobs: int = 1,
              address: str | None = None, log: Callable[[str], None] = print) -> list[Cell]:
    """Run every unfinished cell into ``out/cells/...``, write the tables and figure; return the cells
    with ``status`` (``ran``/``skipped``/``failed``), ``error`` and ``record`` set."""
    out = Path(out)
    todo = []
    for cell in cells:
        cell.folder = str(out / "cells" / cell.notebook / f"{cell.profile}-{cell.chash}")
        cell.record = _finished(Path(cell.folder), cell.chash if cell.in_catalog else None)
        if cell.record is not None:
            cell.status = "skipped"
        else:
            todo.append(cell)
    log(f"sweep: {len(cells)} cells, {len(cells) - len(todo)} already finished, {len(todo)} to run "
        f"({backend}) -> {out}")

    def done(cell: Cell, result: dict) -> None:
        cell.status, cell.error, cell.seconds = result["status"], result["error"], result["seconds"]
        cell.record = result["record"]
        folder = Path(cell.folder)
        if cell.record is not None and _finished(folder, None) is None:  # ran on another node
            write_json(folder / "results.json", cell.record)
        log(f"  {cell.status:<6} {cell.name} {_params_text(cell.params)} ({cell.seconds:.0f} s)"
            + (f": {cell.error}" if cell.error else ""))

    if todo and backend == "ray":
        _ray(todo, address, done)
    elif todo:
        _local(todo, jobs, done)
    write_outputs(cells, out)
    return cells


def _params_text(params: dict) -> str:
    return " ".join(f"{k}={json.dumps(v)}" for k, v in params.items())


def _column(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _numbers(metrics: dict):
    """``(name, value)`` of every numeric leaf of nested metrics (``a/b``, lists ``name[i]``)."""
    for name, value in _leaves(metrics):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            yield name, float(value)


def tidy_table(cells: list[Cell]):
    """Long-format :class:`pandas.DataFrame`: one row per finished cell and numeric metric, with
    columns ``cell, notebook, profile, <parameters>..., metric, value``."""
    import pandas as pd

    names = list(dict.fromkeys(k for c in cells for k in c.params))
    rows = []
    for c in cells:
        if c.record is None:
            continue
        base = {"cell": c.name, "notebook": c.notebook, "profile": c.profile,
                **{k: _column(c.params.get(k)) for k in names}}
        rows += [dict(base, metric=m, value=v) for m, v in _numbers(c.record.get("metrics", {}))]
    return pd.DataFrame(rows, columns=["cell", "notebook", "profile", *names, "metric", "value"])


def write_outputs(cells: list[Cell], out: Path) -> None:
    """``sweep.csv`` (+ ``sweep.parquet`` with pyarrow), ``cells.csv`` and ``sweep.png``/``.svg`` in ``out``."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    table = tidy_table(cells)
    table.to_csv(out / "sweep.csv", index=False)
    try:
        import pyarrow  # noqa: F401
        table.to_parquet(out / "sweep.parquet", index=False)
    except ImportError:
        pass
    pd.DataFrame([{"cell": c.name, "notebook": c.notebook, "profile": c.profile,
                   **{k: _column(v) for k, v in c.params.items()}, "status": c.status, "error": c.error,
                   "seconds": c.seconds} for c in cells]).to_csv(out / "cells.csv", index=False)
    summary_figure(table, out / "sweep")


def summary_figure(table, stem: Path, panels: int = 6) -> None:
    """Up to ``panels`` panels, one per metric (those that vary across cells first, then those of
    most cells): value per cell, the cells labelled by their swept parameters; saved as
    ``stem.png`` and ``stem.svg``."""
    import matplotlib
    import matplotlib.pyplot as plt

    if matplotlib.get_backend().lower() not in ("agg", "svg", "pdf") and not os.environ.get("DISPLAY"):
        plt.switch_backend("Agg")
    fixed = {"cell", "metric", "value"}
    params = [c for c in table.columns if c not in fixed and table[c].nunique(dropna=False) > 1]
    by = table.groupby("metric", sort=False)["value"]
    varies, cells, nonzero = by.nunique() > 1, by.size(), by.agg(lambda v: (v != 0).any())
    # metrics that vary across cells first, then those of most cells; all-zero metrics last
    order = sorted(range(len(cells)), key=lambda i: (not varies.iloc[i], not nonzero.iloc[i], -cells.iloc[i], i))
    metrics = [cells.index[i] for i in order][:panels]
    cols = min(3, max(1, len(metrics)))
    rows = max(1, -(-len(metrics) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        part = table[table["metric"] == metric]
        labels = [", ".join(f"{p}={r[p]}" for p in params) or r["cell"] for _, r in part.iterrows()]
        bars = ax.barh(range(len(part)), part["value"], color="tab:blue")
        ax.bar_label(bars, fmt="%.4g", fontsize=7)
        ax.set_yticks(range(len(part)), labels, fontsize=7)
        ax.set_title(metric, fontsize=9)
        ax.invert_yaxis()
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    if not metrics:
        axes.flat[0].text(0.5, 0.5, "no finished cell", ha="center", va="center")
    shown = f"{len(metrics)} of {table['metric'].nunique()} metrics" if len(table) else "no results"
    fig.suptitle(f"sweep: {table['cell'].nunique()} finished cells, {shown}", fontsize=10)
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(stem.with_suffix(f".{ext}"), dpi=110, bbox_inches="tight")
    plt.close(fig)


def cmd_sweep(args) -> int:
    """The ``sparsenb sweep`` command: 0 if every cell finished, 1 if a cell failed, 2 for a bad grid."""
    try:
        if args.jobs < 1:
            raise GridError(f"--jobs must be at least 1; got {args.jobs}")
        if args.address and args.backend != "ray":
            raise GridError("--address is for --backend ray; add --backend ray or drop --address")
        cells = load_grid(args.grid)
        grid = Path(args.grid)
        out = Path(args.out) if args.out else project_root() / "results" / "_scratch" / "sweeps" / grid.stem
        if out.exists() and not out.is_dir():
            raise GridError(f"--out {out} is a file; give a folder (it is created if missing)")
        for c in cells:
            committed = project_root() / "results" / c.notebook
            if out.resolve() == committed.resolve() or committed.resolve() in out.resolve().parents:
                raise GridError(f"--out {out} is inside the committed record {committed}; choose another folder")
        cells = run_sweep(cells, out, args.backend, args.jobs, args.address,
                          log=lambda s: print(s, file=sys.stderr))
    except GridError as e:
        print(f"sparsenb sweep: {e}", file=sys.stderr)
        return 2
    failed = [c for c in cells if c.status == "failed"]
    print(f"sweep: {sum(c.status == 'ran' for c in cells)} ran, {sum(c.status == 'skipped' for c in cells)} "
          f"skipped, {len(failed)} failed; table {out / 'sweep.csv'}, figure {out / 'sweep.png'}", file=sys.stderr)
    if failed:
        print(f"failed cells ({len(failed)}):", file=sys.stderr)
        for c in failed:
            print(f"  {c.name} {_params_text(c.params)}: {c.error}", file=sys.stderr)
        return 1
    return 0
