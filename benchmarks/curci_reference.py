"""Truly sparse SET-MLP: sparsenb against the reference code of Curci et al., time per epoch.

Curci, Mocanu, Pechenizkiy (2021), "Truly Sparse Neural Networks at Scale", arXiv:2102.01732.
Their code, github.com/SelimaC/large-scale-sparse-neural-networks, trains a SET-MLP with
SciPy sparse matrices: ``set_mlp_sequential.py`` (CSR products in SciPy, the weight gradient
in a Numba-parallel loop over the nonzeros, SET evolution in NumPy). It carries no licence, so
sparsenb does not ship it: clone it and pass its folder.

Usage (about 2 minutes on 2 cores)::

    git clone https://github.com/SelimaC/large-scale-sparse-neural-networks /tmp/curci
    pip install -c constraints.txt -e ".[reference]"     # Numba and psutil, which the reference needs
    python benchmarks/curci_reference.py --reference-dir /tmp/curci

What is measured, for hidden widths H = 1,000 and 10,000 (``--hidden``), on the model and
settings of the reference script: MLP 784-H-H-H-10, ER sparsity with epsilon 20, All-ReLU
(slopes -0.6 / 0.6 / -0.6), softmax + cross-entropy, dropout 0.3 after each hidden layer,
SGD (lr 0.01, momentum 0.9, weight decay 2e-4), batch 128, SET with zeta 0.3, He-uniform init:

* ``ms_per_batch``: one training batch (forward with dropout, backward, update). The reference
  runs the body of its ``SET_MLP.fit`` loop (``_feed_forward(x, True)``, ``_back_prop``);
  sparsenb a plain loop over :class:`sparsenb.layers.TrulySparseMLP` (zero_grad, forward,
  ``F.cross_entropy``, backward, ``torch.optim.SGD`` step). Both see the same random float32
  batches: every kernel runs over all nonzeros, so the values do not change the work;
* ``evolve_s``: one SET evolution of the three hidden layers (the reference's
  ``weights_evolution_II``; sparsenb's ``TrulySparseMLP.evolve(0.3, optimizer)``);
* ``epoch_s``: an epoch of the reference script's data (Fashion-MNIST, 60,000 samples:
  468 batches) plus one evolution, ``468 * ms_per_batch / 1000 + evolve_s``.

An ablation runs in the same rounds: ``sparsenb_nn_dropout``, the same sparsenb model with
torch's ``nn.Dropout`` instead of :class:`~sparsenb.layers.FastDropout` (``speedup_nn_dropout``):
on the AMD EPYC of the records, torch drew the dropout mask serially, one element at a time.
Rounds rotate which code runs first; ``speedup`` is the median of the per-round ratios
reference / sparsenb, with their spread (``benchmarks/common.py``). Both use ``--threads``
threads (default: all cores): ``torch.set_num_threads`` and ``numba.set_num_threads``;
SciPy's sparse products use one.

How the reference runs: ``set_mlp_sequential`` is imported unchanged from
``--reference-dir``, with two shims that only let it import under today's packages:
``utils.load_data`` (it imports Keras to load data files, which is not timed) becomes an
empty module, and ``np.in1d``, removed in NumPy 2.4, is defined as its documented
equivalent ``np.isin(a, b).ravel()`` when missing. Its weights are float64 (the default
dtype of SciPy's ``lil_matrix``), sparsenb's float32: each runs as written. The JSON
records the SHA-256 of the reference files that ran and, in a git checkout, the commit.

Targets (issue 14): sparsenb's epoch is >= 2x faster than the reference's at H = 1,000
and >= 5x at H = 10,000.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import (OUT_HELP, finish, load_avg, machine, machine_cores, output_path, paired_ratio,  # noqa: E402
                    write_progress, write_result)
from sparsenb.layers.truly_sparse import TrulySparseMLP  # noqa: E402

REFERENCE_REPO = "https://github.com/SelimaC/large-scale-sparse-neural-networks"
REFERENCE_FILES = ("set_mlp_sequential.py", "utils/nn_functions.py")
# the reference script's settings (set_mlp_sequential.py, __main__)
SETTINGS = {"inputs": 784, "classes": 10, "hidden_layers": 3, "epsilon": 20, "zeta": 0.3, "dropout": 0.3,
            "lr": 0.01, "momentum": 0.9, "weight_decay": 2e-4, "batch": 128, "all_relu_slope": 0.6,
            "epoch_samples": 60000}
FULL = {"hidden": [1000, 10000], "rounds": 5, "batches": {1000: 40, 10000: 8}, "warmup_batches": 2}
QUICK = {"hidden": [32], "rounds": 2, "batches": {32: 2}, "warmup_batches": 1}
TARGETS = {"1000": 2.0, "10000": 5.0}  # epoch speedup (reference / sparsenb) at least this


def import_reference(ref_dir: Path) -> types.ModuleType:
    """``set_mlp_sequential`` from the reference checkout (checked by ``main``), with the two import shims
    of the module docstring."""
    if str(ref_dir) not in sys.path:
        sys.path.insert(0, str(ref_dir))
    stub = types.ModuleType("utils.load_data")
    stub.__doc__ = "sparsenb benchmark shim: the reference's data loaders (Keras) are not needed to time it"

    def _loader(*args, **kwargs):
        raise RuntimeError("the reference's data loaders are not available in the sparsenb benchmark")

    def _getattr(name: str):  # `from utils.load_data import load_..._data` gets the stand-in
        if name.startswith("load_"):
            return _loader
        raise AttributeError(name)

    stub.__getattr__ = _getattr
    sys.modules.setdefault("utils.load_data", stub)
    if not hasattr(np, "in1d"):
        np.in1d = lambda a, b, assume_unique=False, invert=False: np.isin(  # noqa: E731
            a, b, assume_unique=assume_unique, invert=invert).ravel()
    try:
        return importlib.import_module("set_mlp_sequential")
    except ImportError as e:
        print(f"error: importing the reference failed ({e}); it needs NumPy, SciPy, Numba and psutil: "
              f"pip install -c constraints.txt -e \".[reference]\"", file=sys.stderr)
        raise SystemExit(1)


def reference_provenance(ref_dir: Path) -> dict[str, Any]:
    sha = {f: hashlib.sha256((ref_dir / f).read_bytes()).hexdigest() for f in REFERENCE_FILES}
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ref_dir), *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    try:  # the commit only of a checkout of its own, not of a repository that merely contains the folder
        commit = git("rev-parse", "HEAD") if Path(git("rev-parse", "--show-toplevel")).resolve() == ref_dir else None
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {"repo": REFERENCE_REPO, "commit": commit, "sha256": sha,
            "shims": ["utils.load_data replaced by an empty module (Keras data loaders, not timed)",
                      "np.in1d = np.isin(a, b).ravel() where NumPy (>= 2.4) lacks it"]}


def make_batches(sizes: list[int], n_batches: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n_batches * batch`` random float32 inputs and integer labels (the same in both processes)."""
    n = n_batches * SETTINGS["batch"]
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, sizes[0]), dtype=np.float32), rng.integers(0, sizes[-1], n)


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


class Reference:
    """The reference SET_MLP, driven as its ``fit`` drives it (runs in the worker process)."""

    def __init__(self, ref: types.ModuleType, sizes: list[int], n_batches: int, out_dir: Path, seed: int = 0):
        np.random.seed(seed)
        s = SETTINGS
        acts = [ref.AlternatedLeftReLU(-s["all_relu_slope"] * (-1) ** i) for i in range(len(sizes) - 2)]
        with contextlib.redirect_stdout(io.StringIO()):  # it prints a line per layer
            self.model = ref.SET_MLP(tuple(sizes), tuple(acts) + (ref.Softmax,), epsilon=s["epsilon"])
        m = self.model  # the attributes fit() sets before its loop
        m.loss, m.learning_rate, m.momentum = ref.CrossEntropy(), s["lr"], s["momentum"]
        m.weight_decay, m.zeta, m.dropout_rate = s["weight_decay"], s["zeta"], s["dropout"]
        m.save_filename = str(out_dir / "reference")  # its evolution saves the input layer's connections here
        self.x, labels = make_batches(sizes, n_batches, seed)
        self.y = np.eye(sizes[-1], dtype=np.float32)[labels]
        self.epoch = 0

    def nnz(self) -> list[int]:
        return [int(self.model.w[i].nnz) for i in sorted(self.model.w)]

    def train(self, batches: int) -> float:
        def run():
            b = SETTINGS["batch"]
            for j in range(batches):
                z, a, masks = self.model._feed_forward(self.x[j * b:(j + 1) * b], True)
                self.model._back_prop(z, a, masks, self.y[j * b:(j + 1) * b])
        return _timed(run)

    def evolve(self) -> float:
        with contextlib.redirect_stdout(io.StringIO()):
            t = _timed(lambda: self.model.weights_evolution_II(self.epoch))
        self.epoch += 1
        return t


class ReferenceProcess:
    """The reference in its own process (``--worker``): its import shims and Numba's thread pool stay
    out of the process that times sparsenb, and each code runs as it would alone. Commands go one
    per line on the worker's stdin; each answer is one JSON line."""

    def __init__(self, ref_dir: Path, sizes: list[int], n_batches: int, threads: int):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--reference-dir", str(ref_dir),
               "--sizes", *map(str, sizes), "--batches", str(n_batches), "--threads", str(threads)]
        # stderr to a file: a pipe that nobody reads while the worker runs would block it once full
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     text=True, bufsize=1)
        self._nnz = self._ask(None)["nnz"]

    def _ask(self, command: str | None) -> dict[str, Any]:
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=60)
            self.err.seek(0)
            err = self.err.read().strip().splitlines()
            raise SystemExit(err[-1] if err and err[-1].startswith("error:")
                             else "error: the reference worker stopped:\n" + "\n".join(err[-15:]))
        return json.loads(line)

    def nnz(self) -> list[int]:
        return self._nnz

    def train(self, batches: int) -> float:
        return self._ask(f"train {batches}")["seconds"]

    def evolve(self) -> float:
        return self._ask("evolve")["seconds"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        self.err.close()


def worker(ref_dir: Path, sizes: list[int], n_batches: int, threads: int) -> None:
    """The reference side: build it, answer ``train N`` / ``evolve`` / ``quit`` on stdin."""
    out = sys.stdout
    sys.stdout = sys.stderr  # anything the reference prints stays off the answer channel
    ref = import_reference(ref_dir)
    try:
        import numba
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # a stand-in reference (tests) may not need Numba
        pass
    with tempfile.TemporaryDirectory() as tmp:
        code = Reference(ref, sizes, n_batches, Path(tmp))
        print(json.dumps({"nnz": code.nnz()}), file=out, flush=True)
        for line in sys.stdin:
            cmd = line.split()
            if not cmd or cmd[0] == "quit":
                break
            seconds = code.train(int(cmd[1])) if cmd[0] == "train" else code.evolve()
            print(json.dumps({"seconds": seconds}), file=out, flush=True)


class Sparsenb:
    """:class:`TrulySparseMLP` with the same settings, trained by a plain loop. ``nn_dropout``: with
    torch's ``nn.Dropout`` in place of :class:`~sparsenb.layers.FastDropout` (the ablation)."""

    def __init__(self, sizes: list[int], n_batches: int, seed: int = 0, nn_dropout: bool = False):
        s = SETTINGS
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.model = TrulySparseMLP(sizes, epsilon=s["epsilon"], activation="allrelu", alpha=s["all_relu_slope"],
                                    dropout=s["dropout"], init="he_uniform", generator=g)
        if nn_dropout:
            self.model.dropout = torch.nn.Dropout(s["dropout"])
        self.opt = torch.optim.SGD(self.model.parameters(), lr=s["lr"], momentum=s["momentum"],
                                   weight_decay=s["weight_decay"])
        x, labels = make_batches(sizes, n_batches, seed)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(labels)

    def nnz(self) -> list[int]:
        return [layer.nnz for layer in self.model.layers]

    def train(self, batches: int) -> float:
        def run():
            b = SETTINGS["batch"]
            for j in range(batches):
                self.opt.zero_grad(set_to_none=True)
                F.cross_entropy(self.model(self.x[j * b:(j + 1) * b]), self.y[j * b:(j + 1) * b]).backward()
                self.opt.step()
        return _timed(run)

    def evolve(self) -> float:
        return _timed(lambda: self.model.evolve(SETTINGS["zeta"], self.opt))


def speedups(times: dict, epoch: dict, name: str) -> dict[str, dict[str, float]]:
    """Paired ratios reference / ``name`` per training batch, per evolution and per epoch."""
    return {"batch": paired_ratio(times["reference"]["batch"], times[name]["batch"]),
            "evolve": paired_ratio(times["reference"]["evolve"], times[name]["evolve"]),
            "epoch": paired_ratio(epoch["reference"], epoch[name])}


def bench_hidden(ref_dir: Path, hidden: int, rounds: int, batches: int, warmup: int, threads: int) -> dict[str, Any]:
    s = SETTINGS
    sizes = [s["inputs"]] + [hidden] * s["hidden_layers"] + [s["classes"]]
    n_batches = max(batches, warmup)
    codes = {"reference": ReferenceProcess(ref_dir, sizes, n_batches, threads), "sparsenb": Sparsenb(sizes, n_batches),
             "sparsenb_nn_dropout": Sparsenb(sizes, n_batches, nn_dropout=True)}
    try:
        for code in codes.values():  # Numba compiles, caches fill, momentum buffers exist
            code.train(warmup)
            code.evolve()
        times: dict[str, dict[str, list[float]]] = {k: {"batch": [], "evolve": []} for k in codes}
        loads = []
        for r in range(rounds):
            for name in list(codes)[r % len(codes):] + list(codes)[:r % len(codes)]:
                times[name]["batch"].append(codes[name].train(batches) / batches)
                times[name]["evolve"].append(codes[name].evolve())
            loads.append(load_avg()[0] if load_avg() else None)
            print(f"  H={hidden} round {r + 1}/{rounds}: " + ", ".join(
                f"{k} {1e3 * v['batch'][-1]:.1f} ms/batch, evolve {v['evolve'][-1]:.3f} s" for k, v in times.items()))
        nnz = {k: c.nnz() for k, c in codes.items()}
    finally:
        codes["reference"].close()
    per_epoch = s["epoch_samples"] // s["batch"]
    epoch = {k: [per_epoch * b + e for b, e in zip(v["batch"], v["evolve"])] for k, v in times.items()}
    return {
        "sizes": sizes, "nnz": nnz,
        "ms_per_batch": {k: 1e3 * statistics.median(v["batch"]) for k, v in times.items()},
        "evolve_s": {k: statistics.median(v["evolve"]) for k, v in times.items()},
        "epoch_s": {k: statistics.median(v) for k, v in epoch.items()},
        "speedup": speedups(times, epoch, "sparsenb"),
        "speedup_nn_dropout": speedups(times, epoch, "sparsenb_nn_dropout"),
        "rounds": {k: {"s_per_batch": v["batch"], "evolve_s": v["evolve"]} for k, v in times.items()},
        "batches_per_round": batches, "loadavg_1min_rounds": loads,
    }


def targets_met(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"hidden": int(h), "what": "epoch speedup vs reference", "bound": bound,
             "value": data["results"][h]["speedup"]["epoch"]["median"],
             "met": bool(data["results"][h]["speedup"]["epoch"]["median"] >= bound)}
            for h, bound in data["targets"].items() if h in data["results"]]


def check_reference_dir(ref_dir: Path) -> None:
    missing = [f for f in REFERENCE_FILES if not (ref_dir / f).is_file()]
    if missing:
        raise SystemExit(f"error: {ref_dir} has no {', '.join(missing)}: clone {REFERENCE_REPO} "
                         f"and pass its folder as --reference-dir")


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference-dir", type=Path, required=True,
                    help=f"a checkout of {REFERENCE_REPO} (not shipped with sparsenb)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a test), not a measurement")
    ap.add_argument("--hidden", type=int, nargs="+", help="hidden widths (default 1000 10000)")
    ap.add_argument("--rounds", type=int, help="paired rounds per width")
    ap.add_argument("--threads", type=int, help="threads for both codes (default: all cores)")
    ap.add_argument("--reference-note", help="recorded with the reference's provenance, e.g. where a copy "
                                              "that is not a git checkout came from")
    ap.add_argument("--out", help=OUT_HELP)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # the reference's process
    ap.add_argument("--sizes", type=int, nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--batches", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    ref_dir = args.reference_dir.expanduser().resolve()
    check_reference_dir(ref_dir)
    if args.worker:
        worker(ref_dir, args.sizes, args.batches, args.threads)
        return None
    out = output_path("curci_reference", ap, args)
    s = dict(QUICK if args.quick else FULL)
    if args.hidden:
        if min(args.hidden) < 2:
            ap.error(f"--hidden widths must be at least 2, got {args.hidden}")
        s["hidden"] = args.hidden
    if args.rounds is not None:
        if args.rounds < 1:
            ap.error(f"--rounds must be at least 1, got {args.rounds}")
        s["rounds"] = args.rounds
    threads = args.threads or machine_cores()
    torch.set_num_threads(threads)
    t_start = time.perf_counter()
    data: dict[str, Any] = {
        "benchmark": "curci_reference", **machine(threads),
        "settings": {**SETTINGS, "quick": args.quick, "hidden": s["hidden"], "rounds": s["rounds"],
                     "warmup_batches": s["warmup_batches"],
                     "epoch": "epoch_samples // batch batches + one evolution, per round"},
        "reference": {**reference_provenance(ref_dir), "note": args.reference_note}, "targets": {} if args.quick else TARGETS, "results": {}}
    print(f"torch {torch.__version__}, {threads} threads, CPU: {data['cpu_model']}; reference {ref_dir}")
    for h in s["hidden"]:
        batches = s["batches"].get(h, max(2, 40 * 1000 // max(h, 1000)))
        data["results"][str(h)] = bench_hidden(ref_dir, h, s["rounds"], batches, s["warmup_batches"], threads)
        write_progress(out, data)
    data["target_met"] = targets_met(data)
    data["seconds"] = round(time.perf_counter() - t_start, 1)
    finish(data, [x for r in data["results"].values() for x in r["loadavg_1min_rounds"]], threads)
    write_result(out, data)
    print_table(data)
    return data


def print_table(data: dict[str, Any]) -> None:
    print(f"\n{'H':>6} {'code':>20} {'ms/batch':>9} {'evolve s':>9} {'epoch s':>8}   nnz per layer")
    for h, res in data["results"].items():
        for k in res["ms_per_batch"]:
            print(f"{h:>6} {k:>20} {res['ms_per_batch'][k]:>9.1f} {res['evolve_s'][k]:>9.3f} "
                  f"{res['epoch_s'][k]:>8.1f}   {res['nnz'].get(k, '')}")
        for key, label in (("speedup", "speedup"), ("speedup_nn_dropout", "speedup, nn.Dropout")):
            sp = res[key]
            print(f"{'':>6} {label:>20} {sp['batch']['median']:>8.2f}x {sp['evolve']['median']:>8.1f}x "
                  f"{sp['epoch']['median']:>7.2f}x   (epoch quartiles {sp['epoch']['q1']:.2f}-{sp['epoch']['q3']:.2f})")
    for t in data["target_met"]:
        print(f"target: epoch at H={t['hidden']} >= {t['bound']:g}x faster: {t['value']:.2f}x -> "
              f"{'met' if t['met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
