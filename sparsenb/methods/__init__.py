"""Sparse-training methods behind one registry and one hook contract.

Every method is a small class registered by name; the training loop calls its
hooks and never branches on the name::

    method = sparsenb.methods.get("rigl", sparsity=0.9)   # or build("rigl", cfg): options from a config
    masks = method.init_masks(model)        # a Masking, or None for "dense"
    method.setup(total_steps=..., steps_per_epoch=..., epochs=...)
    ...loss.backward(); method.after_backward(step, masks); opt.step(); method.after_step(step, masks)
    method.on_epoch_end(epoch, masks)

Each method declares its options (``Method.options()``: names, defaults, help) and the notebook
settings it reads (``SETTINGS``), so ``build(name, cfg)`` makes it from a config; it answers its own
cost and schedule (``step_macs``, ``dense_gradient_steps``, ``training_epochs``, ``lr_schedule``,
``snapshots``). The dynamic methods share one vocabulary: :func:`sparsenb.core.dropgrow.drop` /
:func:`~sparsenb.core.dropgrow.grow` with each method's scores, ``drop_fraction`` and ``update_every``
(optimizer steps) as the knobs' names.

Pruning at initialisation (``snip``, ``grasp``, ``synflow``, ``magnitude_init``)
chooses the masks in ``init_masks(model, data)`` and keeps them fixed; ``fixed``
trains with given masks. Iterative magnitude pruning (lottery tickets) is a
driver over whole trainings: :func:`sparsenb.methods.imp.iterative_magnitude_pruning`; random search
over node configurations (:mod:`sparsenb.methods.random_search`) picks fixed masks before training.
"""
from .base import METHODS, Method, Option, available, build, get, register
from . import dense, static, set, rigl, prune_init, imp  # noqa: F401  (registration side effects)
from . import slak  # noqa: F401
from . import dsn  # noqa: F401
from . import ctre  # noqa: F401
from . import edst  # noqa: F401
from . import gmp  # noqa: F401
from . import polarization_gates  # noqa: F401

__all__ = ["Method", "Option", "register", "get", "build", "available", "METHODS"]
