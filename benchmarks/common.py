"""Helpers shared by the benchmark scripts: machine description and paired-round statistics.

Every benchmark times its variants in *interleaved rounds* inside one process
(each round times every variant once, the order rotating from round to round),
so slow drifts of the machine's load hit all variants alike. A ratio is the
median over rounds of the per-round ratio (paired), never a ratio of medians
taken at different times; its spread is the min/max and the quartiles of the
per-round ratios. The 1-minute load average (``os.getloadavg``) is recorded
with every round: on a machine shared with other work, a load above the
number of threads used means the timings were disturbed.

Where a benchmark writes (:func:`output_path`): an unmodified run (no option but ``--out``)
regenerates its committed record ``results/benchmarks/<name>.json``; a modified run
(``--quick``, a subset of widths, other rounds or threads, ...) writes
``results/_scratch/benchmarks/<name>.json`` (git-ignored), so a trial never overwrites the
record; ``--out`` picks the file. While a run is under way its progress goes to
:func:`partial_path` of that file, which replaces the file only when the run has finished.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
from pathlib import Path
from typing import Any, Sequence

import torch


ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "results" / "benchmarks"
SCRATCH = ROOT / "results" / "_scratch" / "benchmarks"
# options that do not change what is measured
NEUTRAL_OPTIONS = ("out", "reference_dir", "reference_note", "worker")
OUT_HELP = ("JSON file (default: the record, results/benchmarks/<name>.json, for an unmodified run; "
            "results/_scratch/benchmarks/<name>.json for a modified one)")


def output_path(name: str, parser: argparse.ArgumentParser, args: argparse.Namespace) -> Path:
    """The JSON file a run of benchmark ``name`` writes (see the module docstring).

    ``args.out`` if given; else the committed record ``RECORDS/<name>.json`` when every other
    option has its default, and ``SCRATCH/<name>.json`` when one does not (printed, with the
    options that made the run modified).
    """
    if args.out is not None:
        return Path(args.out)
    changed = [f"--{k.replace('_', '-')}" for k, v in vars(args).items()
               if k not in NEUTRAL_OPTIONS and v != parser.get_default(k)]
    if not changed:
        return RECORDS / f"{name}.json"
    out = SCRATCH / f"{name}.json"
    print(f"a modified run ({' '.join(changed)}) writes {out.relative_to(ROOT)}, not the record "
          f"{(RECORDS / f'{name}.json').relative_to(ROOT)}; --out picks the file")
    return out


def partial_path(out: str | os.PathLike) -> Path:
    """Where the progress of a run that will write ``out`` is kept until it finishes."""
    out = Path(out)
    return out.with_name(f"{out.stem}.partial{out.suffix}")


def write_progress(out: str | os.PathLike, data: dict[str, Any]) -> None:
    """Save an unfinished run's data in :func:`partial_path` of ``out`` (atomically)."""
    from sparsenb.nb.record import write_json
    write_json(partial_path(out), data)


def write_result(out: str | os.PathLike, data: dict[str, Any]) -> None:
    """Write a finished run's data to ``out`` (atomically) and drop its progress file."""
    from sparsenb.nb.record import write_json
    write_json(out, data)
    partial_path(out).unlink(missing_ok=True)
    print(f"wrote {out}")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_cores() -> int:
    """Cores this process may run on (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def load_avg() -> list[float] | None:
    """``[1, 5, 15]``-minute load averages, or ``None`` where the OS has none."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def machine(threads: int) -> dict[str, Any]:
    """What the JSON records about where and when it was measured."""
    return {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__, "python": platform.python_version(),
            "threads": threads, "cores": machine_cores(), "cpu_model": cpu_model(),
            "load_avg_at_start": load_avg()}


def start(benchmark: str, threads: int | None) -> dict[str, Any]:
    """Set torch's threads (``None``: all cores), print the machine line and return the JSON's head."""
    threads = threads or machine_cores()
    torch.set_num_threads(threads)
    out: dict[str, Any] = {"benchmark": benchmark, **machine(torch.get_num_threads())}
    load = out["load_avg_at_start"]
    print(f"torch {torch.__version__}, {threads} threads, CPU: {out['cpu_model']}"
          + (f", load {load[0]:.2f}" if load else ""))
    return out


def paired_ratio(num: Sequence[float], den: Sequence[float]) -> dict[str, float]:
    """Median, quartiles, min and max of the per-round ratios ``num[i] / den[i]``."""
    r = sorted(a / b for a, b in zip(num, den))
    if not r:
        raise ValueError("no rounds to compare")
    q = statistics.quantiles(r, n=4, method="inclusive") if len(r) > 1 else [r[0]] * 3
    return {"median": statistics.median(r), "q1": q[0], "q3": q[2], "min": r[0], "max": r[-1], "rounds": len(r)}


def finish(out: dict[str, Any], round_loads: Sequence[float | None], threads: int) -> dict[str, Any]:
    """Add the load summary: ``max_load_avg`` over rounds and ``machine_busy`` (load > threads + 1)."""
    loads = [x for x in round_loads if x is not None]
    out["load_avg_at_end"] = load_avg()
    out["max_load_avg"] = max(loads) if loads else None
    out["machine_busy"] = bool(loads) and max(loads) > threads + 1
    return out
