"""Command line: ``sparsenb run``, ``sparsenb list``, ``sparsenb gallery``.

``sparsenb run notebooks/01_set_rigl.ipynb -p EPOCHS 5 --profile smoke --out /tmp/x``
executes the notebook headlessly with papermill. The parameters ``PROFILE``,
``OUT_DIR`` and ``FIG_DIR`` are always passed; results.json, the figures'
folder and the executed notebook land in ``--out`` (default
``results/<notebook>/<profile>``; figures default to ``figures/<notebook>/<profile>``).
"""
from __future__ import annotations

import argparse
import ast
import re
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


def cmd_run(args: argparse.Namespace) -> int:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .record import project_root

    nb = Path(args.notebook)
    if not nb.exists():
        print(f"sparsenb run: no notebook at {nb}; `sparsenb list` shows the notebooks", file=sys.stderr)
        return 2
    params = {k: _value(v) for k, v in (args.param or [])}
    profile = args.profile or params.get("PROFILE") or "cpu"
    params["PROFILE"] = profile
    root = project_root()
    out = Path(args.out) if args.out else root / "results" / nb.stem / profile
    figs = Path(args.figures) if args.figures else (out / "figures" if args.out else root / "figures" / nb.stem / profile)
    params.update(OUT_DIR=str(out.resolve()), FIG_DIR=str(figs.resolve()))
    out.mkdir(parents=True, exist_ok=True)
    executed = out / f"{nb.stem}.ipynb"
    print(f"running {nb} (profile {profile}) -> {out}", file=sys.stderr)
    try:
        pm.execute_notebook(str(nb), str(executed), parameters=params, cwd=str(nb.parent.resolve()),
                            kernel_name=args.kernel, progress_bar=not args.quiet, log_output=args.log_output)
    except PapermillExecutionError as e:
        tb = _strip_ansi("\n".join(e.traceback[-6:])) if e.traceback else ""
        print(f"\nsparsenb run: {nb.name} failed in cell {e.cell_index} (execution count {e.exec_count}):\n"
              f"  {e.ename}: {_strip_ansi(str(e.evalue))}\n\n{tb}\n\nThe executed notebook with the error is at {executed}",
              file=sys.stderr)
        return 1
    print(f"done: {out / 'results.json'}", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .catalog import NOTEBOOKS

    for stem, nb in sorted(NOTEBOOKS.items()):
        print(f"{stem}: {nb.title}\n  paper: {nb.paper}\n  claim: {nb.claim}")
        for profile, minutes in nb.minutes.items():
            keys = nb.profiles[profile]
            shown = "  ".join(f"{k.lower()}={keys[k]}" for k in ("DATASET", "MODEL", "EPOCHS", "SEEDS") if k in keys)
            print(f"  {profile:<6} ~{minutes:g} min  {shown}")
    return 0


def cmd_gallery(args: argparse.Namespace) -> int:
    from .gallery import update_readme
    from .perf_table import update_perf_table

    readme = Path(args.readme) if args.readme else None
    ok_gallery = update_readme(readme, check=args.check)
    ok_perf = update_perf_table(readme, check=args.check)
    if args.check and not (ok_gallery and ok_perf):
        print("README gallery or performance table is out of date with results/: run `sparsenb gallery`",
              file=sys.stderr)
        return 1
    print("README gallery and performance table " + ("are up to date" if ok_gallery and ok_perf else "updated"),
          file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sparsenb", description="Reproducible sparse-training notebooks.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute a notebook headlessly (papermill)")
    run.add_argument("notebook")
    run.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                     help="override a parameter (Python literal or string); repeatable")
    run.add_argument("--profile", help="smoke | cpu | paper (default: cpu)")
    run.add_argument("--out", help="folder for results.json and the executed notebook")
    run.add_argument("--figures", help="folder for the figures")
    run.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--log-output", action="store_true", help="stream the notebook's output")
    run.set_defaults(fn=cmd_run)
    lst = sub.add_parser("list", help="the notebooks, their claims, profiles and expected run times")
    lst.set_defaults(fn=cmd_list)
    gal = sub.add_parser("gallery", help="regenerate the README gallery and performance table from results/")
    gal.add_argument("--check", action="store_true", help="only check; exit 1 if out of date")
    gal.add_argument("--readme", help="path of README.md (default: the project's)")
    gal.set_defaults(fn=cmd_gallery)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
