"""Training and measuring: the one training loop and what it reports.

* :mod:`.trainer`: ``Trainer`` (method hooks, checkpoint/resume, history), optimizers, schedules,
  seeds and devices.
* :mod:`.flops`: forward and training multiply-accumulates, dense vs sparse.
* :mod:`.metrics`: topology metrics (mask distance, ITOP exploration, disagreement ...).
* :mod:`.calibration`: NLL, ECE and reliability of (ensembles of) classifiers.
* :mod:`.augment`: seeded data augmentation (random crop and flip).
* :mod:`.timing`: measured forward time (dense, masked, CSR, compacted).
"""
from . import augment, calibration, flops, metrics, timing
from .trainer import Trainer, make_optimizer, make_scheduler, pick_device, set_seed

__all__ = ["Trainer", "make_optimizer", "make_scheduler", "pick_device", "set_seed", "augment", "calibration",
           "flops", "metrics", "timing"]
