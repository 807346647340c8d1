"""benchmarks/curci_reference.py runs its protocol and writes a well-formed record.

The reference code of Curci et al. is not shipped (no licence), so these tests drive the
benchmark with a small stand-in that has the reference's interface (``SET_MLP`` with
``_feed_forward``, ``_back_prop``, ``weights_evolution_II`` and CSR weights ``w[i]``).
No speed is asserted: the real comparison is run by hand (see the script's docstring).
"""
import hashlib
import json
import math

import pytest

from conftest import load_benchmark

STAND_IN = '''
import numpy as np


class AlternatedLeftReLU:
    def __init__(self, slope):
        self.slope = slope


class Softmax:
    pass


class CrossEntropy:
    pass


class _W:
    def __init__(self, nnz):
        self.nnz = nnz


class SET_MLP:
    def __init__(self, dimensions, activations, epsilon=20):
        print("this line must not reach the benchmark's answer channel")
        self.w = {i + 1: _W(epsilon * (a + b)) for i, (a, b) in enumerate(zip(dimensions[:-1], dimensions[1:]))}
        self.batches_seen = 0

    def _feed_forward(self, x, drop=False):
        return {}, {1: x @ np.ones((x.shape[1], 3))}, {}

    def _back_prop(self, z, a, masks, y_true):
        assert y_true.shape[1] == 10 and np.allclose(y_true.sum(1), 1)  # one-hot labels
        self.batches_seen += 1

    def weights_evolution_II(self, epoch=0):
        print("evolved", epoch)
'''


@pytest.fixture
def stand_in(tmp_path):
    ref = tmp_path / "ref"
    (ref / "utils").mkdir(parents=True)
    (ref / "set_mlp_sequential.py").write_text(STAND_IN)
    (ref / "utils" / "nn_functions.py").write_text("")
    return ref


def test_quick_run_writes_the_record(stand_in, tmp_path):
    bench = load_benchmark("curci_reference")
    out = tmp_path / "out" / "curci_reference.json"
    returned = bench.main(["--reference-dir", str(stand_in), "--quick", "--out", str(out), "--threads", "1"])
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(returned))
    assert data["benchmark"] == "curci_reference" and data["threads"] == 1
    assert data["targets"] == {} and data["target_met"] == []  # --quick is not a measurement
    ref = data["reference"]
    assert ref["commit"] is None  # not a git checkout
    assert ref["sha256"]["set_mlp_sequential.py"] == hashlib.sha256(STAND_IN.encode()).hexdigest()
    (h, res), = data["results"].items()
    assert res["sizes"] == [784, int(h), int(h), int(h), 10]
    assert res["nnz"]["reference"] == [20 * (a + b) for a, b in zip(res["sizes"][:-1], res["sizes"][1:])]
    assert len(res["nnz"]["sparsenb"]) == 4
    for k in ("reference", "sparsenb"):
        assert len(res["rounds"][k]["s_per_batch"]) == data["settings"]["rounds"]
        assert res["epoch_s"][k] > res["evolve_s"][k] > 0
    for s in res["speedup"].values():
        assert math.isfinite(s["median"]) and s["min"] <= s["median"] <= s["max"]


def test_targets_are_checked_against_the_epoch_speedup():
    bench = load_benchmark("curci_reference")
    data = {"targets": {"1000": 2.0, "10000": 5.0},
            "results": {"1000": {"speedup": {"epoch": {"median": 2.5}}},
                        "10000": {"speedup": {"epoch": {"median": 4.0}}}}}
    met = {t["hidden"]: (t["value"], t["met"]) for t in bench.targets_met(data)}
    assert met == {1000: (2.5, True), 10000: (4.0, False)}


def test_missing_reference_names_the_repository(tmp_path, capsys):
    bench = load_benchmark("curci_reference")
    with pytest.raises(SystemExit, match="github.com/SelimaC/large-scale-sparse-neural-networks"):
        bench.main(["--reference-dir", str(tmp_path / "nowhere"), "--quick", "--out", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()


def test_a_reference_that_fails_to_import_is_reported(stand_in, tmp_path):
    (stand_in / "set_mlp_sequential.py").write_text("import a_module_that_is_not_installed\n")
    bench = load_benchmark("curci_reference")
    with pytest.raises(SystemExit, match="importing the reference failed .*a_module_that_is_not_installed"):
        bench.main(["--reference-dir", str(stand_in), "--quick", "--out", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()


def test_provenance_names_the_commit_of_a_checkout_only(stand_in, tmp_path):
    import subprocess

    bench = load_benchmark("curci_reference")
    assert bench.reference_provenance(stand_in.resolve())["commit"] is None  # a plain folder
    git = ["git", "-C", str(stand_in), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "reference"], check=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert bench.reference_provenance(stand_in.resolve())["commit"] == head
    # a folder inside that checkout is not the checkout: no commit is claimed for it
    inner = stand_in / "utils"
    (inner / "utils").mkdir()
    (inner / "set_mlp_sequential.py").write_text("")
    (inner / "utils" / "nn_functions.py").write_text("")
    assert bench.reference_provenance(inner.resolve())["commit"] is None
