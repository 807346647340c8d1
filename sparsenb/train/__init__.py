"""Training and measuring: the one training loop and what it reports.

* :mod:`.trainer`: ``Trainer`` (method hooks, per-step or per-epoch LR, ``on_step``, pluggable
  ``batch_fn`` / ``evaluate_fn``, checkpoint/resume, history), ``evaluate``, optimizers, schedules,
  seeds and devices.
* :mod:`.flops`: forward and training multiply-accumulates, dense vs sparse.
* :mod:`.metrics`: topology metrics (mask distance, ITOP exploration, disagreement ...).
* :mod:`.calibration`: NLL, ECE and reliability of (ensembles of) classifiers.
* :mod:`.augment`: seeded data augmentation (random crop and flip).
* :mod:`.timing`: measured forward time (dense, masked, CSR, compacted).
* :mod:`.memory`: ``keep_freed_memory()``, no page faults from huge activations (glibc).
"""
from . import augment, calibration, flops, memory, metrics, timing
from .trainer import FunctionLR, Trainer, evaluate, make_optimizer, make_scheduler, pick_device, set_seed

__all__ = ["Trainer", "FunctionLR", "evaluate", "make_optimizer", "make_scheduler", "pick_device", "set_seed",
           "augment", "calibration", "flops", "memory", "metrics", "timing"]
