"""Helpers shared by the benchmark scripts: machine description and paired-round statistics.

Every benchmark times its variants in *interleaved rounds* inside one process
(each round times every variant once, the order rotating from round to round),
so slow drifts of the machine's load hit all variants alike. A ratio is the
median over rounds of the per-round ratio (paired), never a ratio of medians
taken at different times; its spread is the min/max and the quartiles of the
per-round ratios. The 1-minute load average (``os.getloadavg``) is recorded
with every round: on a machine shared with other work, a load above the
number of threads used means the timings were disturbed.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
from typing import Any, Sequence

import torch


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
