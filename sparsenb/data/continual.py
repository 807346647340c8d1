"""Class-incremental task sequences: a dataset split into tasks of disjoint classes (split MNIST, split CIFAR-10)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .registry import TensorData

__all__ = ["ClassTask", "split_classes"]


@dataclass
class ClassTask:
    """One task of a class-incremental sequence.

    classes: the task's labels *after* relabelling (task ``t`` of 2 classes: ``[2t, 2t + 1]``).
    original: the same classes' labels in the source dataset.
    X_train float32 (N, *input_shape), y_train int64 (N,); X_test, y_test the same for the test split.
    """

    index: int
    classes: list[int]
    original: list[int]
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor


def _per_class(y: torch.Tensor, cls: int, limit: int | None, g: torch.Generator) -> torch.Tensor:
    idx = (y == cls).nonzero().flatten()
    if limit is not None and limit < idx.numel():
        idx = idx[torch.randperm(idx.numel(), generator=g)[:limit]].sort().values
    return idx


def split_classes(data: TensorData, classes_per_task: int = 2, order: Sequence[int] | None = None,
                  train_per_class: int | None = None, test_per_class: int | None = None,
                  seed: int = 0) -> list[ClassTask]:
    """Split ``data`` into ``num_classes / classes_per_task`` tasks of disjoint classes.

    ``order`` (default ``0 .. C-1``) lists the source classes in task order; labels are renamed
    so that the i-th class of ``order`` becomes label ``i`` (as the official AFAF code does), so
    task ``t`` holds labels ``t*k .. t*k + k - 1``. ``train_per_class`` / ``test_per_class`` keep a
    fixed random subset of each class (``None``: all); the same seed gives the same rows.
    """
    order = list(range(data.num_classes)) if order is None else [int(c) for c in order]
    if sorted(order) != sorted(set(order)) or any(not 0 <= c < data.num_classes for c in order):
        raise ValueError(f"order must list distinct classes of {data.name} (0..{data.num_classes - 1}), got {order}")
    if classes_per_task < 1 or len(order) % classes_per_task:
        raise ValueError(f"{len(order)} classes do not split into tasks of {classes_per_task}")
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for t in range(len(order) // classes_per_task):
        orig = order[t * classes_per_task:(t + 1) * classes_per_task]
        new = list(range(t * classes_per_task, (t + 1) * classes_per_task))
        parts = {}
        for split, limit in (("train", train_per_class), ("test", test_per_class)):
            X, y = getattr(data, f"X_{split}"), getattr(data, f"y_{split}")
            idx = [_per_class(y, c, limit, g) for c in orig]
            parts[f"X_{split}"] = torch.cat([X[i] for i in idx])
            parts[f"y_{split}"] = torch.cat([torch.full((len(i),), n, dtype=torch.int64) for i, n in zip(idx, new)])
        tasks.append(ClassTask(index=t, classes=new, original=orig, **parts))
    return tasks
