"""Command line: ``sparsenb run``, ``sparsenb verify``, ``sparsenb sweep``, ``sparsenb list``, ``sparsenb gallery``,
``sparsenb site``.

``sparsenb run notebooks/01_set_rigl.ipynb -p EPOCHS 5 --profile smoke --out /tmp/x``
executes the notebook headlessly with papermill.

- **Parameters are checked before a kernel starts** (:mod:`sparsenb.nb.params`): an
  unknown name (with the closest valid one), a wrong type, a scalar where a
  list belongs, an unknown profile, or an unusable ``--out``/``--figures``
  gives one line on stderr and exit code 2.
- **Where it writes.** ``PROFILE``, ``OUT_DIR`` and ``FIG_DIR`` are always
  passed. Without ``--out``, an unmodified profile run writes the committed
  record ``results/<notebook>/<profile>/`` (figures ``figures/<notebook>/<profile>/``);
  any other run writes the git-ignored scratch folder
  ``results/_scratch/<notebook>/<profile>-<config hash>/`` and says so
  (:func:`sparsenb.nb.record.destination`). ``--record`` writes the canonical
  folders on purpose. The executed notebook lands next to results.json.
- **Failures.** A failing cell prints its exception, the cell and the executed
  notebook's path (at most 5 lines; exit 1); Ctrl-C prints how many units are
  cached and exits 130. In both cases the previous results.json is untouched
  (a run replaces it only when it finishes).

``sparsenb verify NB`` re-runs a committed record into a scratch folder and
compares every metric (exit 1 if one differs by more than ``--tolerance``).

``sparsenb sweep GRID.toml`` runs a grid of cells locally or on Ray (:mod:`sparsenb.nb.sweep`).
"""
from __future__ import annotations

import argparse
import ast
import logging
import os
import re
import shutil
import sys
from pathlib import Path

__all__ = ["main"]


def _value(text: str):
    """``-p KEY VALUE``: a Python literal if it parses as one (5, 0.1, [0.9, 0.95], None), else a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(_strip_ansi(str(text)).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _usable_dir(path: Path, flag: str) -> str | None:
    """None if ``path`` is (or can be made) a writable folder, else a one-line reason."""
    if path.exists() and not path.is_dir():
        return f"{flag} {path} is a file; give a folder (it is created if missing)"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"cannot create {flag} folder {path} ({e.strerror or e}); choose a writable folder"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{flag} folder {path} is not writable; choose a writable folder"
    return None


class _Plan:
    """What ``sparsenb run`` will do: parameters, folders, and whether it writes the committed record."""

    def __init__(self, nb: Path, params: dict, out: Path, figs: Path, note: str, chash: str | None,
                 record_file: Path):
        self.nb, self.params, self.out, self.figs, self.note, self.chash = nb, params, out, figs, note, chash
        self.record_file = record_file  # the previous record in the run's folder, replaced only when it finishes


def _expected_threads(cfg: dict | None, values: dict, spec: dict) -> int:
    import torch
    threads = cfg.get("THREADS") if cfg and "THREADS" in cfg else values.get(
        "THREADS", spec["THREADS"].default if "THREADS" in spec else None)
    return int(threads) if threads else torch.get_num_threads()


def _plan(args: argparse.Namespace) -> _Plan | str:
    """Check everything that can be checked before a kernel starts; a str is the error line."""
    from . import params as P
    from .catalog import INTERACTIVE, NOTEBOOKS, resolve
    from .record import config_hash, destination, record_config
    from ..train.trainer import pick_device

    nb = Path(args.notebook)
    if not nb.exists() or nb.is_dir():
        return f"no notebook at {nb}; `sparsenb list` shows the notebooks (files notebooks/NN_name.ipynb)"
    values = {k: _value(v) for k, v in (args.param or [])}
    for key, flag in (("OUT_DIR", "--out"), ("FIG_DIR", "--figures")):
        if key in values:
            return f"give the folder with {flag} DIR, not -p {key}"
    if args.profile and values.get("PROFILE", args.profile) != args.profile:
        return f"--profile {args.profile} and -p PROFILE {values['PROFILE']} disagree; give one"
    stem = nb.stem
    if stem in INTERACTIVE:
        return (f"{stem} is an interactive notebook with no record to run; open it in JupyterLab: "
                f"jupyter lab {nb}")
    spec = P.notebook_spec(stem, nb)
    profile = args.profile or values.get("PROFILE") or (spec["PROFILE"].default if "PROFILE" in spec else None) or "cpu"
    values["PROFILE"] = profile
    try:
        P.check(spec, values, where=stem, profile=profile)
    except P.ParameterError as e:
        return str(e)
    cfg = None
    if stem in NOTEBOOKS:
        try:
            cfg = resolve(stem, profile, {k: v for k, v in values.items() if k in NOTEBOOKS[stem].profiles[profile]})
        except ValueError as e:
            return str(e)
    device = values.get("DEVICE", spec["DEVICE"].default if "DEVICE" in spec else "cpu")
    try:
        device = str(pick_device(device))
    except RuntimeError as e:
        return f"DEVICE {device!r}: {e}"
    dest = destination(stem, profile, dict(cfg) if cfg else {}, _expected_threads(cfg, values, spec), device)
    if args.out:
        out = Path(args.out)
        if out.resolve() == dest.canonical_out.resolve() and not dest.canonical and not args.record:
            return (f"--out {out} is the committed {profile} record, and this run differs from the profile "
                    f"({'; '.join(dest.differences)}): choose another folder, or add --record to replace it on purpose")
        note = ""
    elif args.record or dest.canonical:
        out = dest.canonical_out
        note = " (the committed record)" if dest.canonical else " (the committed record, --record)"
    else:
        out = dest.out_dir
        note = (f"\n  scratch folder (git-ignored): this run differs from the {profile} profile: "
                f"{'; '.join(dest.differences)}; --out DIR chooses the folder")
    if args.figures:
        figs = Path(args.figures)
    elif args.out:
        figs = out / "figures"
    else:
        figs = dest.canonical_fig if (args.record or dest.canonical) else dest.fig_dir
    for path, flag in ((out, "--out"), (figs, "--figures")):
        problem = _usable_dir(path, flag)
        if problem:
            return problem
    values.update(OUT_DIR=str(out.resolve()), FIG_DIR=str(figs.resolve()))
    return _Plan(nb, values, out, figs, note, config_hash(record_config(stem, cfg)) if cfg else None, out / "results.json")


def _record_note(plan: _Plan) -> str:
    return f"; {plan.record_file} is unchanged" if plan.record_file.exists() else ""


def _interrupted(plan: _Plan) -> int:
    from .record import cache_status

    if plan.chash:
        done, total = cache_status(plan.out, plan.chash, plan.nb.stem)
    else:
        done, total = len(list((plan.out / "runs").glob("*/*.json"))), None
    of = f" of {total}" if total else ""
    print(f"interrupted: {done}{of} runs cached; re-run the same command to resume{_record_note(plan)}",
          file=sys.stderr)
    return 130


def _failed(plan: _Plan, executed: Path, e) -> int:
    if e.ename == "KeyboardInterrupt":
        return _interrupted(plan)
    first = next((line.strip() for line in (e.source or "").splitlines() if line.strip()
                  and not line.strip().startswith("#")), "")
    for line in _strip_ansi("\n".join(e.traceback or [])).splitlines():
        arrow = re.match(r"\s*-+>\s*\d+\s+(.*)", line)
        if arrow:  # the line of the cell that raised (IPython marks it with an arrow)
            first = arrow.group(1).strip()
            break
    where = f"cell {e.exec_count}" if e.exec_count else f"cell {e.cell_index}"
    lines = [x for x in _strip_ansi(str(e.evalue)).splitlines() if x.strip()] or [""]
    message = f"  {e.ename}: {_one_line(lines[0], 300)}\n"
    if len(lines) > 1:  # a multi-line message usually ends with its fix: show first and last line
        message += f"  {'... ' if len(lines) > 2 else ''}{_one_line(lines[-1], 300)}\n"
    print(f"sparsenb run: {plan.nb.name} failed in {where} (`{_one_line(first, 80)}`):\n{message}"
          f"  full traceback: {executed}{_record_note(plan)}", file=sys.stderr)
    return 1


class _KnownParameters(logging.Filter):
    """Drops papermill's "Passed unknown parameter: X" for settings this CLI has already checked
    against the notebook's spec: a notebook's parameters cell lists the common settings only, the
    others are read from the spec by ``snb.nb.settings``, so the warning would say a setting that
    does take effect is unknown."""

    def __init__(self, names: dict):
        super().__init__()
        self.names = set(names)

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        prefix = "Passed unknown parameter: "
        return not (msg.startswith(prefix) and msg[len(prefix):].strip() in self.names)


def cmd_run(args: argparse.Namespace) -> int:
    plan = _plan(args)
    if isinstance(plan, str):
        print(f"sparsenb run: {plan}", file=sys.stderr)
        return 2
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    executed = plan.out / f"{plan.nb.stem}.ipynb"
    print(f"running {plan.nb} (profile {plan.params['PROFILE']}) -> {plan.out}{plan.note}", file=sys.stderr)
    from .record import RECORD_ENV
    before = os.environ.get(RECORD_ENV)
    if args.record:
        os.environ[RECORD_ENV] = "1"
    quiet_known = _KnownParameters(plan.params)
    logging.getLogger("papermill").addFilter(quiet_known)
    try:
        pm.execute_notebook(str(plan.nb), str(executed), parameters=plan.params, cwd=str(plan.nb.parent.resolve()),
                            kernel_name=args.kernel, progress_bar=not args.quiet, log_output=args.log_output)
    except KeyboardInterrupt:
        return _interrupted(plan)
    except PapermillExecutionError as e:
        return _failed(plan, executed, e)
    except Exception as e:  # the kernel died, could not start, ...: still one clear message
        print(f"sparsenb run: {plan.nb.name} stopped: {type(e).__name__}: {_one_line(e)}\n"
              f"  executed notebook: {executed}{_record_note(plan)}", file=sys.stderr)
        return 1
    finally:
        logging.getLogger("papermill").removeFilter(quiet_known)
        if before is None:
            os.environ.pop(RECORD_ENV, None)
        else:
            os.environ[RECORD_ENV] = before
    done = plan.out / "results.json"
    if not done.exists() or (plan.out / "results.partial.json").exists():
        print(f"sparsenb run: {plan.nb.name} ran but did not finish its record (no run.finish() call?): "
              f"{plan.out / 'results.partial.json'}", file=sys.stderr)
        return 1
    print(f"done: {done}", file=sys.stderr)
    return 0


def _leaves(obj, prefix: str = ""):
    """``(path, value)`` of every number/str/bool leaf of nested metrics."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{prefix}/{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{prefix}[{i}]")
    else:
        yield prefix, obj


def compare_metrics(old: dict, new: dict, tolerance: float) -> list[tuple[str, object, object, float | None, bool]]:
    """Rows ``(metric, committed, now, |difference|, within tolerance)`` over every leaf of both."""
    a, b = dict(_leaves(old)), dict(_leaves(new))
    rows = []
    for key in list(a) + [k for k in b if k not in a]:
        x, y = a.get(key), b.get(key)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y))
        diff = abs(y - x) if numbers else None
        ok = diff <= tolerance if numbers else x == y
        rows.append((key, x, y, diff, ok))
    return rows


def cmd_verify(args: argparse.Namespace) -> int:
    import json

    from . import params as P
    from .catalog import NOTEBOOKS, resolve
    from .record import SCRATCH, config_hash, project_root, record_config

    root = project_root()
    nb = Path(args.notebook)
    if not nb.suffix:
        nb = root / "notebooks" / f"{args.notebook}.ipynb"
    if not nb.exists():
        print(f"sparsenb verify: no notebook {args.notebook}; give a stem (01_set_rigl) or a path", file=sys.stderr)
        return 2
    stem, profile = nb.stem, args.profile
    committed_path = Path(args.committed) if args.committed else root / "results" / stem / profile / "results.json"
    if not committed_path.exists():
        print(f"sparsenb verify: no record at {committed_path}; run it first or give --committed", file=sys.stderr)
        return 2
    committed = json.loads(committed_path.read_text())
    if stem in NOTEBOOKS and committed["config_hash"] != config_hash(record_config(stem, resolve(stem, profile))):
        print(f"sparsenb verify: {committed_path} was made with a config that is not the {profile} profile's "
              f"today (hash {committed['config_hash']} vs {config_hash(record_config(stem, resolve(stem, profile)))}); "
              f"re-run it with `sparsenb run` instead", file=sys.stderr)
        return 2
    spec = P.notebook_spec(stem, nb)
    cfg = committed.get("config", {})
    params = [(k, repr(v)) for k, v in cfg.items() if k in spec and k != "PROFILE"
              and (stem not in NOTEBOOKS or k not in NOTEBOOKS[stem].profiles[profile])]
    env = committed.get("env", {})
    if "THREADS" in spec and "THREADS" not in cfg and env.get("threads"):
        params.append(("THREADS", str(env["threads"])))
    if "DEVICE" in spec and env.get("device"):
        params.append(("DEVICE", env["device"]))
    out = Path(args.out) if args.out else root / "results" / SCRATCH / stem / f"verify-{profile}-{committed['config_hash']}"
    if not args.resume:
        shutil.rmtree(out / "runs", ignore_errors=True)
    argv = ["run", str(nb), "--profile", profile, "--out", str(out), "--quiet"]
    for k, v in params:
        argv += ["-p", k, v]
    code = main(argv)
    if code != 0:
        return code
    now = json.loads((out / "results.json").read_text())
    rows = compare_metrics(committed["metrics"], now["metrics"], args.tolerance)
    width = max([len(r[0]) for r in rows] + [6])
    print(f"{'metric':<{width}}  {'committed':>12}  {'now':>12}  {'difference':>10}  within {args.tolerance:g}")
    for key, x, y, diff, ok in rows:
        fmt = lambda v: f"{v:.6g}" if isinstance(v, float) else _one_line(v, 12)  # noqa: E731
        d = f"{diff:.3g}" if diff is not None else ("" if ok else "differs")
        print(f"{key:<{width}}  {fmt(x):>12}  {fmt(y):>12}  {d:>10}  {'yes' if ok else 'NO'}")
    claims = {c["text"]: c.get("holds") for c in committed.get("claims", [])}
    changed = [c["text"] for c in now.get("claims", []) if claims.get(c["text"], c.get("holds")) != c.get("holds")]
    for text in changed:
        print(f"claim changed: {text!r}: committed {claims[text]}, now {not claims[text]}")
    then, here = committed.get("env", {}), now.get("env", {})
    moved = [f"{k} {then[k]} -> {here.get(k)}" for k in ("cpu", "cpu_capability", "threads", "torch")
             if k in then and then[k] != here.get(k)]
    if "cpu_capability" not in then:
        print("note: the record does not say which CPU made it (it predates that field); float results depend on "
              "the CPU's vector instructions, so on another kind of CPU expect differences of a few tenths of a "
              "point (see README, 'Re-running a record')", file=sys.stderr)
    if moved:
        print(f"note: the machine differs from the record's ({'; '.join(moved)}): float results depend on the CPU's "
              f"vector instructions and the thread count, so differences of a few tenths of a point are expected "
              f"(see README, 'Re-running a record')", file=sys.stderr)
    bad = sum(not r[4] for r in rows) + len(changed)
    print(f"{len(rows) - sum(not r[4] for r in rows)} of {len(rows)} metrics within {args.tolerance:g}"
          f"{f', {len(changed)} claim(s) changed' if changed else ''}; this run: {out / 'results.json'}",
          file=sys.stderr)
    return 1 if bad else 0


def cmd_list(args: argparse.Namespace) -> int:
    from .catalog import INTERACTIVE, NOTEBOOKS
    from .gallery import run_time_text

    for stem, summary in sorted(INTERACTIVE.items()):
        print(f"{stem}: {summary}\n  interactive, no record: jupyter lab notebooks/{stem}.ipynb")

    for stem, nb in sorted(NOTEBOOKS.items()):
        print(f"{stem}: {nb.title}\n  paper: {nb.paper}\n  claim: {nb.claim}")
        for profile, keys in nb.profiles.items():
            shown = "  ".join(f"{k.lower()}={keys[k]}" for k in ("DATASET", "MODEL", "EPOCHS", "SEEDS") if k in keys)
            if profile == "cpu":
                when = f"{run_time_text(stem)} (measured)"
            else:
                when = f"~{nb.minutes[profile]:g} min (estimate)" if profile in nb.minutes else "time not estimated"
            print(f"  {profile:<6} {when}  {shown}")
    return 0


def cmd_gallery(args: argparse.Namespace) -> int:
    from .gallery import record_problems, update_readme
    from .perf_table import update_perf_table

    readme = Path(args.readme) if args.readme else None
    problems = record_problems()
    ok_gallery = update_readme(readme, check=args.check)
    ok_perf = update_perf_table(readme, check=args.check)
    for p in problems:
        print(f"sparsenb gallery: {p}", file=sys.stderr)
    if args.check and not (ok_gallery and ok_perf):
        print("README gallery, performance table or a notebook's run time is out of date with results/: "
              "run `sparsenb gallery`", file=sys.stderr)
        return 1
    if problems:
        return 1
    print("README gallery and performance table " + ("are up to date" if ok_gallery and ok_perf else "updated"),
          file=sys.stderr)
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    from .site import build_site, screenshot_index

    try:
        pages = build_site(args.out)
    except ValueError as e:
        print(f"sparsenb site: {e}", file=sys.stderr)
        return 2
    print(f"wrote {len(pages)} pages; open {pages[0]}", file=sys.stderr)
    if args.screenshot:
        screenshot_index(args.out, args.screenshot)
        print(f"screenshot of the index page: {args.screenshot}", file=sys.stderr)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .sweep import cmd_sweep
    return cmd_sweep(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sparsenb", description="Reproducible sparse-training notebooks.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute a notebook headlessly (papermill)")
    run.add_argument("notebook")
    run.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                     help="override a parameter (Python literal or string); repeatable")
    run.add_argument("--profile", help="smoke | cpu | paper (default: the notebook's PROFILE, cpu)")
    run.add_argument("--out", help="folder for results.json and the executed notebook "
                                   "(default: the committed record for an unmodified profile run, else a scratch folder)")
    run.add_argument("--figures", help="folder for the figures")
    run.add_argument("--record", action="store_true",
                     help="write the committed record results/<notebook>/<profile>/ even if parameters differ")
    run.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--log-output", action="store_true", help="stream the notebook's output")
    run.set_defaults(fn=cmd_run)
    ver = sub.add_parser("verify", help="re-run a committed record into a scratch folder and compare every metric")
    ver.add_argument("notebook", help="stem (01_set_rigl) or path of the notebook")
    ver.add_argument("--profile", default="cpu", help="profile of the record (default cpu)")
    ver.add_argument("--tolerance", type=float, default=0.0,
                     help="largest absolute difference accepted per metric (default 0: bit-identical)")
    ver.add_argument("--committed", help="the record to verify (default results/<notebook>/<profile>/results.json)")
    ver.add_argument("--out", help="folder of the re-run (default results/_scratch/<notebook>/verify-<profile>-<hash>)")
    ver.add_argument("--resume", action="store_true", help="reuse the re-run's cached units (default: recompute all)")
    ver.set_defaults(fn=cmd_verify)
    swp = sub.add_parser("sweep", help="run a grid of notebook parameters (local processes or Ray); one tidy table")
    swp.add_argument("grid", help="grid file (.toml or .yaml; README, Sweeps)")
    swp.add_argument("--jobs", type=int, default=1, help="cells at once with the local backend (default 1)")
    swp.add_argument("--backend", choices=("local", "ray"), default="local",
                     help="local: a process pool (default); ray: one Ray task per cell")
    swp.add_argument("--address", help="Ray cluster: auto (this node's cluster) or ray://HOST:10001 "
                                       "(default: start a local Ray instance)")
    swp.add_argument("--out", help="folder of the cells and tables (default results/_scratch/sweeps/<grid name>)")
    swp.set_defaults(fn=_sweep)
    lst = sub.add_parser("list", help="the notebooks, their claims, profiles and run times")
    lst.set_defaults(fn=cmd_list)
    gal = sub.add_parser("gallery", help="regenerate the README gallery, run times and performance table from results/")
    gal.add_argument("--check", action="store_true", help="only check; exit 1 if out of date")
    gal.add_argument("--readme", help="path of README.md (default: the project's)")
    gal.set_defaults(fn=cmd_gallery)
    site = sub.add_parser("site", help="a static HTML site of the record (tables, one page per notebook), offline")
    site.add_argument("--out", default="site", help="folder of the site (default ./site)")
    site.add_argument("--screenshot", metavar="PNG",
                      help="also save the index page's first screen as seen by headless Chromium")
    site.set_defaults(fn=cmd_site)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except KeyboardInterrupt:  # Ctrl-C outside a notebook's execution (cmd_run handles that one)
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
