"""keep_freed_memory: inside the block, freed large tensors are reused without page faults (glibc)."""
import json
import subprocess
import sys

import pytest

from sparsenb.train import memory
from sparsenb.train.memory import glibc_malloc_available, keep_freed_memory

# Runs in a fresh process: in a long-lived one (a pytest worker) earlier tests may have left a large free
# block in the heap, and a 64 MB tensor would then be served from it without faults, block or not.
_SCENARIO = r"""
import json, resource, statistics, torch
from sparsenb.train.memory import keep_freed_memory
MB64 = 64 * 2**20 // 4  # float32 elements of 64 MB: above glibc's largest mmap threshold (32 MB)

def faults_per_cycle(n=8, warmup=0):
    # median minor page faults of one allocate-touch-free cycle of a 64 MB tensor; the median and the
    # warm-up because inside the block the heap grows during the first few cycles
    for _ in range(warmup):
        torch.ones(MB64)
    out = []
    for _ in range(n):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.ones(MB64)
        out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return statistics.median(out)

res = {"outside": faults_per_cycle()}
with keep_freed_memory(enabled=False) as changed:  # before the real block: that one leaves free heap behind
    res["disabled_changed"], res["disabled"] = changed, faults_per_cycle()
with keep_freed_memory() as changed:
    res["changed"], res["inside"] = changed, faults_per_cycle(warmup=8)
print(json.dumps(res))
"""


@pytest.fixture(scope="module")
def faults() -> dict:
    if not glibc_malloc_available():
        pytest.skip("needs glibc malloc (Linux)")
    out = subprocess.run([sys.executable, "-c", _SCENARIO], capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if res["outside"] < 1000:  # e.g. transparent huge pages for every mapping: 32 faults per 64 MB
        pytest.skip(f"only {res['outside']:.0f} page faults per 64 MB block here: nothing to avoid")
    return res


def test_large_blocks_are_reused_inside_the_block(faults):
    assert faults["changed"] is True
    assert faults["inside"] < faults["outside"] / 20, faults


def test_disabled_changes_nothing(faults):
    assert faults["disabled_changed"] is False
    assert faults["disabled"] > faults["outside"] / 2, faults


class _RecordingLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


def test_settings_are_reset_and_memory_trimmed_even_after_an_error(monkeypatch):
    libc = _RecordingLibc()
    monkeypatch.setattr(memory, "_libc", lambda: libc)
    with pytest.raises(RuntimeError, match="boom"):
        with keep_freed_memory() as changed:
            assert changed is True
            assert libc.calls == [("mallopt", memory.M_MMAP_MAX, 0), ("mallopt", memory.M_TRIM_THRESHOLD, memory._NEVER_TRIM)]
            raise RuntimeError("boom")
    assert libc.calls[2:] == [("mallopt", p, v) for p, v in memory._RESET] + [("malloc_trim", 0)]


def test_without_glibc_it_does_nothing(monkeypatch):
    monkeypatch.setattr(memory, "_libc", lambda: None)
    with keep_freed_memory() as changed:
        assert changed is False
