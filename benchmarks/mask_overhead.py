"""Mask overhead: time per training step of dense vs. static-masked vs. RigL training.

Usage (a few minutes on 2 cores; ``--quick``: seconds, for tests)::

    python benchmarks/mask_overhead.py [--quick] [--threads N] [--out FILE]

What is timed is one training step exactly as :class:`sparsenb.train.Trainer` runs it
(``zero_grad -> forward -> backward -> method.after_backward -> optimizer.step
-> method.after_step``; the masks' optimizer hooks run inside ``optimizer.step``),
on random in-memory batches, so the difference between the variants is the cost
of the masks (and of RigL's mask updates), not data loading.

* models: LeNet-300-100 (784-300-100-10) and a wide MLP 784-2048-2048-10;
* variants:
  - ``dense``: no masks;
  - ``remask``: the baseline of a masking library that re-masks the weights after the
    step: the same random masks as ``static``, not attached; after ``optimizer.step()``
    one ``p.mul_(float_mask)`` per layer (float masks precomputed), nothing else;
  - ``static``: random ERK masks at sparsity 0.9 from the ``static`` method, attached
    to the optimizer (sparsenb's contract: exactly zero after every step);
  - ``rigl``: the same plus a RigL update every ``delta_t = 100`` steps;
    ``setup(total_steps=huge)`` so updates never stop. Its cost is amortised: each timed
    block is a multiple of ``delta_t`` steps and its step counter runs on, so every block
    contains exactly ``steps / delta_t`` update steps;
* SGD (lr 0.01, momentum 0.9), batch 128, cross-entropy;
* fairness: warm-up steps for every variant, then interleaved rounds (see
  ``benchmarks/common.py``): ratios are medians of per-round paired ratios to dense,
  with their spread; the load average is recorded every round. Within a round each
  variant's block runs in ``chunks`` slices (default 10), the variants alternating
  slice by slice, so all four see the same few seconds of the machine: on a VM whose
  speed drifts by 10-30 % over seconds, whole blocks one after the other gave per-round
  ratios from 0.92 to 1.19 for a 5 % effect.

Targets: static <= 1.05 x dense, RigL <= 1.10 x dense (issue 14). The JSON (written
atomically) holds medians, ratios with spread, targets, met flags, settings and the machine.
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
from common import (OUT_HELP, finish, load_avg, machine, machine_cores, output_path, paired_ratio,  # noqa: E402
                    write_result)
from sparsenb.models import MLP, lenet_300_100  # noqa: E402

VARIANTS = ("dense", "remask", "static", "rigl")
TARGETS = {"static": 1.05, "rigl": 1.10}
MODELS = {
    "lenet300": lambda: lenet_300_100(784, 10),
    "mlp2048": lambda: MLP(784, (2048, 2048), 10),
}
MODEL_DESC = {"lenet300": "LeNet-300-100 (784-300-100-10)", "mlp2048": "MLP 784-2048-2048-10"}

# steps per timed block per model (multiples of delta_t), rounds, warm-up steps
FULL = {"steps": {"lenet300": 200, "mlp2048": 100}, "rounds": 15, "warmup": 50, "delta_t": 100, "chunks": 10}
QUICK = {"steps": {"lenet300": 2, "mlp2048": 2}, "rounds": 2, "warmup": 2, "delta_t": 2, "chunks": 2}  # RigL's update path runs


class Runner:
    """One (model, variant): its model, optimizer, method, masks and a step counter."""

    def __init__(self, model_name: str, variant: str, batches: list[tuple[torch.Tensor, torch.Tensor]],
                 sparsity: float, delta_t: int, seed: int = 0):
        torch.manual_seed(seed)  # same initial weights for every variant
        self.model = MODELS[model_name]()
        self.model.train()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.loss_fn = nn.CrossEntropyLoss()
        self.remask: list[tuple[torch.Tensor, torch.Tensor]] = []
        if variant in ("dense", "remask"):
            self.method = None
        elif variant == "static":
            self.method = sparsenb.methods.get("static", sparsity=sparsity, seed=seed)
        elif variant == "rigl":
            self.method = sparsenb.methods.get("rigl", sparsity=sparsity, update_every=delta_t, seed=seed)
        else:
            raise ValueError(f"unknown variant {variant!r}")
        # as Trainer: masks from the method, attached to the optimizer's step hooks
        self.masks = self.method.init_masks(self.model) if self.method is not None else None
        if self.masks is not None:
            self.masks.attach(self.optimizer)
        if variant == "remask":  # the same masks as "static", applied by hand after each step
            masks = sparsenb.methods.get("static", sparsity=sparsity, seed=seed).init_masks(self.model)
            self.remask = [(mp.param, mp.mask.to(mp.param.dtype)) for mp in masks]
        if self.method is not None:
            huge = 10**12  # updates never stop (RigL freezes the mask at t_end * total_steps)
            self.method.setup(total_steps=huge, steps_per_epoch=huge, epochs=1)
        self.batches = batches
        self.step = 0
        self.loss = float("nan")

    def run(self, n: int) -> None:
        """``n`` training steps, mirroring ``Trainer._train_epoch`` (minus metrics)."""
        model, opt, method, masks, loss_fn = self.model, self.optimizer, self.method, self.masks, self.loss_fn
        remask = self.remask
        nb = len(self.batches)
        for _ in range(n):
            x, y = self.batches[self.step % nb]
            opt.zero_grad(set_to_none=True)
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            if method is not None:
                method.after_backward(self.step, masks)
            opt.step()
            if remask:
                with torch.no_grad():
                    for p, m in remask:
                        p.mul_(m)
            if method is not None:
                method.after_step(self.step, masks)
            self.step += 1
        self.loss = float(loss.detach())

    def updates_in(self, start: int, n: int) -> int:
        """How many of steps ``start .. start+n-1`` are RigL update steps."""
        if self.method is None or not hasattr(self.method, "is_update_step"):
            return 0
        return sum(self.method.is_update_step(s) for s in range(start, start + n))

    def exactly_sparse(self) -> bool:
        if self.remask:
            return all(bool((p[m == 0] == 0).all()) for p, m in self.remask)
        if self.masks is None:
            return True
        return all(bool((mp.param[~mp.mask] == 0).all()) for mp in self.masks)


def bench_model(model_name: str, steps: int, rounds: int, warmup: int, delta_t: int,
                batch_size: int, sparsity: float, chunks: int = 10, log=print) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(1234)
    batches = [(torch.randn(batch_size, 1, 28, 28, generator=gen),
                torch.randint(0, 10, (batch_size,), generator=gen)) for _ in range(8)]
    runners = {v: Runner(model_name, v, batches, sparsity, delta_t) for v in VARIANTS}
    for r in runners.values():
        r.run(warmup)
    per_round: dict[str, list[float]] = {v: [] for v in VARIANTS}  # ms/step
    load_per_round: list[float | None] = []  # 1-min load average at the start of each round
    rigl_updates = 0
    n_chunks = max(1, min(chunks, steps))
    sizes = [steps // n_chunks + (1 if i < steps % n_chunks else 0) for i in range(n_chunks)]
    for rnd in range(rounds):
        load = load_avg()
        load_per_round.append(load[0] if load else None)
        rigl_updates += runners["rigl"].updates_in(runners["rigl"].step, steps)
        elapsed = {v: 0.0 for v in VARIANTS}
        gc.collect()
        # the variants alternate slice by slice, so all of them see the same seconds of the machine
        for c, n in enumerate(sizes):
            k = (rnd + c) % len(VARIANTS)
            for v in VARIANTS[k:] + VARIANTS[:k]:  # rotate so no variant always runs first/last
                t0 = time.perf_counter()
                runners[v].run(n)
                elapsed[v] += time.perf_counter() - t0
        for v in VARIANTS:
            per_round[v].append(1000.0 * elapsed[v] / steps)
        log(f"  {model_name} round {rnd + 1}/{rounds}: "
            + ", ".join(f"{v} {per_round[v][-1]:.3f}" for v in VARIANTS) + " ms/step"
            + (f"  (load {load_per_round[-1]:.2f})" if load_per_round[-1] is not None else ""))
    ms = {v: statistics.median(per_round[v]) for v in VARIANTS}
    spread = {v: paired_ratio(per_round[v], per_round["dense"]) for v in VARIANTS if v != "dense"}
    ratios = {v: s["median"] for v, s in spread.items()}
    met = {v: ratios[v] <= TARGETS[v] for v in TARGETS}
    return {
        "model": MODEL_DESC[model_name],
        "steps_per_block": steps,
        "slices_per_block": n_chunks,
        "ms_per_step": ms,
        "ratios": ratios,
        "ratio_spread": spread,
        "met": met,
        "per_round_ms_per_step": per_round,
        "load_avg_per_round": load_per_round,
        "rigl_updates_timed": rigl_updates,
        "rigl_mask_changes": len(runners["rigl"].method.events),
        "density": {v: (runners[v].masks.density() if runners[v].masks is not None else
                        (sum(int(m.sum()) for _, m in runners[v].remask) / sum(m.numel() for _, m in runners[v].remask)
                         if runners[v].remask else 1.0)) for v in VARIANTS},
        "exactly_sparse": {v: runners[v].exactly_sparse() for v in VARIANTS},
        "final_loss": {v: runners[v].loss for v in VARIANTS},
    }


def format_table(results: dict[str, dict]) -> str:
    head = f"{'model':<30} {'variant':<8} {'ms/step':>9} {'x dense':>8} {'target':>8} {'met?':>5}"
    lines = [head, "-" * len(head)]
    for res in results.values():
        for v in VARIANTS:
            ratio = f"{res['ratios'][v]:.3f}" if v in res["ratios"] else "1.000"
            target = f"<={TARGETS[v]:.2f}" if v in TARGETS else ""
            met = ("yes" if res["met"][v] else "NO") if v in res["met"] else ""
            lines.append(f"{res['model']:<30} {v:<8} {res['ms_per_step'][v]:>9.3f} {ratio:>8} {target:>8} {met:>5}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny settings (a few seconds), for tests")
    p.add_argument("--out", type=Path, help=OUT_HELP)
    p.add_argument("--steps", type=int, help="steps per timed block, all models (default LeNet 200, MLP 100)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 15; quick 2)")
    p.add_argument("--warmup", type=int, help="warm-up steps per variant (default 50; quick 2)")
    p.add_argument("--delta-t", type=int, help="RigL steps between updates (default 100; quick 2)")
    p.add_argument("--chunks", type=int, help="slices per block, variants alternating slice by slice (default 10; quick 2)")
    p.add_argument("--threads", type=int, help="torch threads (default: all cores of the machine)")
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    args = p.parse_args(argv)
    out_path = output_path("mask_overhead", p, args)

    settings = json.loads(json.dumps(QUICK if args.quick else FULL))
    if args.steps is not None:
        settings["steps"] = {m: args.steps for m in MODELS}
    for key in ("rounds", "warmup", "delta_t", "chunks"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    if min(settings["steps"].values()) < 1 or settings["rounds"] < 1 or settings["warmup"] < 0 or settings["delta_t"] < 1 \
            or settings["chunks"] < 1:
        p.error("need steps >= 1, rounds >= 1, warmup >= 0, delta_t >= 1, chunks >= 1")
    settings.update(batch_size=128, sparsity=0.9, distribution="erk", optimizer="SGD(lr=0.01, momentum=0.9)",
                    loss="cross_entropy", quick=args.quick, models=list(args.models))

    threads = args.threads or machine_cores()
    torch.set_num_threads(threads)
    out: dict[str, Any] = {"benchmark": "mask_overhead", **machine(torch.get_num_threads())}
    load = out["load_avg_at_start"]
    print(f"torch {torch.__version__}, {threads} threads, CPU: {out['cpu_model']}"
          + (f", load {load[0]:.2f}" if load else ""))
    print(f"steps/block {settings['steps']}, rounds {settings['rounds']}, warm-up {settings['warmup']}, "
          f"RigL delta_t {settings['delta_t']}, {settings['chunks']} slices per block")

    t_start = time.perf_counter()
    results = {}
    for name in args.models:
        results[name] = bench_model(name, settings["steps"][name], settings["rounds"], settings["warmup"],
                                    settings["delta_t"], settings["batch_size"], settings["sparsity"],
                                    chunks=settings["chunks"])
    out.update(wall_seconds=time.perf_counter() - t_start, settings=settings, targets=TARGETS, results=results,
               all_met=all(all(r["met"].values()) for r in results.values()))
    finish(out, [x for r in results.values() for x in r["load_avg_per_round"]], threads)
    print()
    print(format_table(results))
    print(f"\nall targets met: {out['all_met']}   ({out['wall_seconds']:.1f} s)")
    if out["machine_busy"]:
        print(f"WARNING: load average reached {out['max_load_avg']:.2f} on {threads} threads: "
              "other processes competed for the CPU, timings are unreliable")
    write_result(out_path, out)
    return out


if __name__ == "__main__":
    main()
