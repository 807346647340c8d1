"""Trainer overhead: time per dense training step of the Trainer vs a plain loop vs a bare loop.

Usage (an estimated minute on 2 idle cores, not yet run; ``--quick``: seconds, for tests)::

    python benchmarks/trainer_overhead.py [--quick] [--threads N] [--data mnist5k]
                                          [--out FILE]

LeNet-300-100 on a built-in data set (``mnist5k``: 784 inputs; ``digits``: 64 inputs, the
``--quick`` default, no download), dense, SGD (lr 0.01, momentum 0.9), batch 128,
cross-entropy. The training batches are materialised once (a list of tensors, the data set's
seeded shuffle), so data loading is not timed; every variant starts from the same weights.

* ``bare``: ``zero_grad -> forward -> loss -> backward -> step``, nothing else;
* ``plain``: the hand-written loop a user writes to report what the Trainer reports: the bare
  step plus the loss and the correct predictions summed on the device, read once per epoch;
* ``trainer``: :meth:`sparsenb.train.Trainer.fit` for one epoch per call (no method, no test
  loader, no progress bar): its per-step hooks and per-epoch bookkeeping (history row) included.

A timed block is ``epochs`` passes over the batches. Fairness: warm-up, then interleaved rounds
with a rotating order (``benchmarks/common.py``); ratios are medians of per-round paired ratios.
Target: trainer <= 1.02 x plain (the Trainer's loop is as lean as a hand-written one). The JSON
(written atomically) holds medians, ratios with spread, the target and whether it was met,
settings and the machine.
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a plain script from anywhere
    sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "benchmarks"))
import sparsenb  # noqa: E402
from common import OUT_HELP, finish, load_avg, output_path, paired_ratio, start, write_result  # noqa: E402
from sparsenb.models import lenet_300_100  # noqa: E402

VARIANTS = ("bare", "plain", "trainer")
TARGETS = {"trainer_vs_plain": 1.02}  # issue 14's target
FULL = {"data": "mnist5k", "epochs": 2, "rounds": 25, "warmup": 1, "max_batches": None}
QUICK = {"data": "digits", "epochs": 1, "rounds": 2, "warmup": 1, "max_batches": 3}


class Runner:
    """One variant: its own LeNet-300-100 (same initial weights), SGD and the shared batches."""

    def __init__(self, variant: str, batches: list, in_features: int, classes: int, seed: int = 0):
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}")
        torch.manual_seed(seed)
        self.variant = variant
        self.model = lenet_300_100(in_features, classes)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.loss_fn = nn.CrossEntropyLoss()
        self.batches = batches
        self.trainer = (sparsenb.Trainer(self.model, None, self.optimizer, epochs=1, device="cpu", progress=False)
                        if variant == "trainer" else None)
        self.loss = float("nan")

    def run(self, epochs: int) -> None:
        """``epochs`` passes over the batches."""
        for _ in range(epochs):
            if self.trainer is not None:
                self.loss = self.trainer.fit(self.batches)[-1]["train_loss"]
            elif self.variant == "plain":
                self.loss = self._plain_epoch()
            else:
                self.loss = self._bare_epoch()

    def _bare_epoch(self) -> float:
        model, opt, loss_fn = self.model, self.optimizer, self.loss_fn
        model.train()
        for x, y in self.batches:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
        return float(loss.detach())

    def _plain_epoch(self) -> float:
        model, opt, loss_fn = self.model, self.optimizer, self.loss_fn
        model.train()
        loss_sum = torch.zeros(())
        correct = torch.zeros((), dtype=torch.long)
        seen = 0
        for x, y in self.batches:
            opt.zero_grad(set_to_none=True)
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(y)
            correct += (out.detach().argmax(1) == y).sum()
            seen += len(y)
        _ = float(correct) / seen  # the accuracy the Trainer reports, read once per epoch
        return float(loss_sum) / seen


def make_batches(data_name: str, batch_size: int, max_batches: int | None, seed: int = 0):
    data = sparsenb.data.load(data_name)
    loader, _ = data.loaders(batch_size, seed=seed)
    batches = [(x.reshape(len(x), -1).contiguous(), y) for x, y in loader]
    if max_batches is not None:
        batches = batches[:max_batches]
    return batches, batches[0][0].shape[1], data.num_classes


def bench(data_name: str, epochs: int, rounds: int, warmup: int, batch_size: int, max_batches: int | None,
          log=print) -> dict[str, Any]:
    batches, in_features, classes = make_batches(data_name, batch_size, max_batches)
    runners = {v: Runner(v, batches, in_features, classes) for v in VARIANTS}
    for r in runners.values():
        r.run(warmup)
    steps = epochs * len(batches)
    per_round: dict[str, list[float]] = {v: [] for v in VARIANTS}  # ms/step
    load_per_round: list[float | None] = []
    for rnd in range(rounds):
        load = load_avg()
        load_per_round.append(load[0] if load else None)
        k = rnd % len(VARIANTS)
        for v in VARIANTS[k:] + VARIANTS[:k]:  # rotate so no variant always runs first/last
            gc.collect()
            t0 = time.perf_counter()
            runners[v].run(epochs)
            per_round[v].append(1000.0 * (time.perf_counter() - t0) / steps)
        log(f"  round {rnd + 1}/{rounds}: " + ", ".join(f"{v} {per_round[v][-1]:.3f}" for v in VARIANTS)
            + " ms/step" + (f"  (load {load_per_round[-1]:.2f})" if load_per_round[-1] is not None else ""))
    spread = {"plain_vs_bare": paired_ratio(per_round["plain"], per_round["bare"]),
              "trainer_vs_bare": paired_ratio(per_round["trainer"], per_round["bare"]),
              "trainer_vs_plain": paired_ratio(per_round["trainer"], per_round["plain"])}
    ratios = {k: s["median"] for k, s in spread.items()}
    same = all(torch.equal(a, b) for a, b in zip(runners["plain"].model.parameters(),
                                                  runners["trainer"].model.parameters()))
    return {
        "model": f"LeNet-300-100 ({in_features}-300-100-{classes})", "data": data_name,
        "batches_per_epoch": len(batches), "steps_per_block": steps,
        "ms_per_step": {v: statistics.median(per_round[v]) for v in VARIANTS},
        "ratios": ratios, "ratio_spread": spread,
        "met": {k: ratios[k] <= t for k, t in TARGETS.items()},
        "per_round_ms_per_step": per_round, "load_avg_per_round": load_per_round,
        "trainer_equals_plain": same,  # same weights after the same steps: the loops compute the same thing
        "final_loss": {v: runners[v].loss for v in VARIANTS},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny settings (a few seconds), for tests")
    p.add_argument("--out", type=Path, help=OUT_HELP)
    p.add_argument("--data", choices=("mnist5k", "digits"), help="data set (default mnist5k; quick digits)")
    p.add_argument("--epochs", type=int, help="passes over the batches per timed block (default 2; quick 1)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 25; quick 2)")
    p.add_argument("--warmup", type=int, help="warm-up epochs per variant (default 1)")
    p.add_argument("--threads", type=int, help="torch threads (default: all cores of the machine)")
    args = p.parse_args(argv)
    out_path = output_path("trainer_overhead", p, args)

    settings = dict(QUICK if args.quick else FULL)
    for key in ("data", "epochs", "rounds", "warmup"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if settings["epochs"] < 1 or settings["rounds"] < 1 or settings["warmup"] < 0:
        p.error("need epochs >= 1, rounds >= 1, warmup >= 0")
    settings.update(batch_size=128, optimizer="SGD(lr=0.01, momentum=0.9)", loss="cross_entropy", quick=args.quick)

    out = start("trainer_overhead", args.threads)
    threads = out["threads"]
    t_start = time.perf_counter()
    res = bench(settings["data"], settings["epochs"], settings["rounds"], settings["warmup"],
                settings["batch_size"], settings["max_batches"])
    out.update(wall_seconds=time.perf_counter() - t_start, settings=settings, targets=TARGETS, results=res,
               all_met=all(res["met"].values()))
    finish(out, res["load_avg_per_round"], threads)
    print("\n" + "\n".join(f"{v:<8} {res['ms_per_step'][v]:8.3f} ms/step" for v in VARIANTS))
    print(", ".join(f"{k} {r:.3f}" for k, r in res["ratios"].items())
          + f"; target trainer <= {TARGETS['trainer_vs_plain']} x plain: {'met' if out['all_met'] else 'NOT met'}")
    if out["machine_busy"]:
        print(f"WARNING: load average reached {out['max_load_avg']:.2f} on {threads} threads: "
              "other processes competed for the CPU, timings are unreliable")
    write_result(out_path, json.loads(json.dumps(out)))
    return out


if __name__ == "__main__":
    main()
