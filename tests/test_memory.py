"""keep_freed_memory: inside the block, freed large tensors are reused without page faults (glibc)."""
import resource
import statistics

import pytest
import torch

from sparsenb.train import memory
from sparsenb.train.memory import glibc_malloc_available, keep_freed_memory

MB64 = 64 * 2**20 // 4  # float32 elements of a 64 MB tensor: above glibc's largest mmap threshold (32 MB)
glibc = pytest.mark.skipif(not glibc_malloc_available(), reason="needs glibc malloc (Linux)")


def _faults_per_cycle(n: int = 8, warmup: int = 0) -> float:
    """Median minor page faults of one allocate-touch-free cycle of a 64 MB tensor, over ``n`` cycles
    after ``warmup`` cycles (inside the block the heap grows during the first few cycles: an object
    allocated between two cycles can split a freed block, and the next cycle grows the heap)."""
    for _ in range(warmup):
        torch.ones(MB64)
    faults = []
    for _ in range(n):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.ones(MB64)  # allocated, every page written, freed
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return statistics.median(faults)


@pytest.fixture
def faults_outside() -> float:
    faults = _faults_per_cycle()
    if faults < 1000:  # e.g. transparent huge pages for every mapping: 32 faults per 64 MB
        pytest.skip(f"only {faults:.0f} page faults per 64 MB block here: nothing to avoid")
    return faults


@glibc
def test_large_blocks_are_reused_inside_the_block(faults_outside):
    with keep_freed_memory() as changed:
        assert changed is True
        inside = _faults_per_cycle(warmup=8)
    assert inside < faults_outside / 20, (inside, faults_outside)


@glibc
def test_disabled_changes_nothing(faults_outside):
    with keep_freed_memory(enabled=False) as changed:
        assert changed is False
        assert _faults_per_cycle() > faults_outside / 2


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
