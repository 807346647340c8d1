"""The method hook contract and the registry."""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..core.distributions import check_distribution, check_empty_layers, check_sparsity, layer_nnz, ON_EMPTY
from ..core import init as sparse_init
from ..core import seeding
from ..core.masks import Masking, resolve_dense

METHODS: dict[str, type["Method"]] = {}


def register(name: str) -> Callable[[type["Method"]], type["Method"]]:
    """Class decorator: make a method available as ``get(name, ...)``."""

    def deco(cls: type[Method]) -> type[Method]:
        if name in METHODS:
            raise ValueError(f"method {name!r} is already registered")
        cls.name = name
        METHODS[name] = cls
        return cls

    return deco


def available() -> list[str]:
    return sorted(METHODS)


def get(name: str, **kwargs: Any) -> "Method":
    """Instantiate the method registered as ``name`` with its options (all checked here, before any model is touched)."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {available()}")
    cls = METHODS[name]
    options = _options(cls)
    unknown = sorted(set(kwargs) - options)
    if unknown:
        raise ValueError(f"method {name!r} has no option {', '.join(map(repr, unknown))}; "
                         f"its options are {sorted(options)}")
    return cls(**kwargs)


def _options(cls: type) -> set[str]:
    """The keyword options of a method class: its own ``__init__`` and those it passes on with ``**kwargs``."""
    import inspect

    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters
        names |= {p for p, v in params.items() if p != "self" and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)}
        if not any(v.kind == v.VAR_KEYWORD for v in params.values()):
            break
    return names


def _then_init_weights(init_masks: Callable) -> Callable:
    """Wrap a method's ``init_masks`` so that, on the outermost call only (a subclass calling
    ``super().init_masks`` is not initialised twice), the returned masks get ``self.init``
    (:func:`sparsenb.core.init.apply_init`, fresh draws from the method's ``"init"`` stream)."""

    @functools.wraps(init_masks)
    def wrapper(self: "Method", model: nn.Module, data: Any = None) -> Masking | None:
        depth = getattr(self, "_init_masks_depth", 0)
        self._init_masks_depth = depth + 1
        try:
            masks = init_masks(self, model, data)
        finally:
            self._init_masks_depth = depth
        if depth == 0 and masks is not None:
            sparse_init.apply_init(masks, getattr(self, "init", "dense"),
                                   generator=seeding.generator(self.seed, "init"))
        return masks

    return wrapper


class Method:
    """Base class: a fixed random sparse mask (the ``static`` method).

    Hooks (all optional to override):

    * ``init_masks(model, data=None) -> Masking | None`` before training;
    * ``setup(total_steps, steps_per_epoch, epochs)`` once the schedule is known;
    * ``after_backward(step, masks)``: dense gradients are in ``param.grad``
      (the mask has not yet zeroed them): RigL's grow step lives here;
    * ``after_step(step, masks)``: after ``optimizer.step()`` (masks already re-applied);
    * ``on_epoch_end(epoch, masks)``: SET's evolution.

    ``step`` counts optimizer steps from 0 (the step about to be / just taken);
    ``epoch`` counts from 0. Random choices use ``self.generator`` (seeded from
    ``seed`` through :mod:`sparsenb.core.seeding`, so it never replays ``torch.manual_seed(seed)``), saved by ``state_dict`` so that a resumed run is bit-identical.

    Args:
        sparsity: global fraction of pruned weights, in [0, 1).
        distribution: per-layer density: "uniform", "er" or "erk".
        dense: parameter names kept dense, or "first_last"/"first"/"last".
        seed: seed of the method's own random generator.
        on_empty: a layer left with nnz 0: "warn" (default), "raise" or "ignore".
        init: weight initialisation of the masked weights once the masks exist
            (:mod:`sparsenb.core.init`): ``"dense"`` (default: the model's own, dense-scale init,
            untouched), ``"sparse"`` (each neuron rescaled to its kept fan-in),
            ``"sparse_he"`` or ``"sparse_glorot"``. Applied after every subclass's
            ``init_masks`` (automatically, once), and regrown weights follow the same rule.
    """

    name = "base"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "init_masks" in cls.__dict__:
            cls.init_masks = _then_init_weights(cls.__dict__["init_masks"])

    def __init__(self, sparsity: float = 0.9, distribution: str = "erk",
                 dense: Sequence[str] | str = (), seed: int = 0, on_empty: str = "warn", init: str = "dense"):
        self.init = sparse_init.check_init(init)
        self.sparsity = check_sparsity(sparsity)
        self.distribution = check_distribution(distribution)
        if not (dense is None or isinstance(dense, str)
                or (isinstance(dense, (list, tuple)) and all(isinstance(d, str) for d in dense))):
            raise ValueError(f"dense must be parameter names or 'first_last'/'first'/'last', got {dense!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an int, got {seed!r}")
        if on_empty not in ON_EMPTY:
            raise ValueError(f"on_empty must be one of {ON_EMPTY}; got {on_empty!r}")
        self.dense = dense
        self.seed = seed
        self.on_empty = on_empty
        self.generator = seeding.generator(seed, "method")
        self.total_steps = self.steps_per_epoch = self.epochs = 0
        self.events: list[dict] = []  # one row per mask change: step, layer, grown, dropped

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sparsity={self.sparsity}, distribution={self.distribution!r})"

    # ----------------------------------------------------------------- hooks
    def init_masks(self, model: nn.Module, data: Any = None) -> Masking | None:
        """Random masks with the exact per-layer nnz of ``self.distribution``."""
        masks = Masking(model)
        dense = resolve_dense(masks, self.dense)
        nnz = layer_nnz(masks.shapes(), 1.0 - self.sparsity, self.distribution, dense)
        check_empty_layers(nnz, self.on_empty)
        masks.set_random(nnz, generator=self.generator)
        return masks

    def setup(self, total_steps: int, steps_per_epoch: int, epochs: int) -> None:
        self.total_steps, self.steps_per_epoch, self.epochs = total_steps, steps_per_epoch, epochs

    def after_backward(self, step: int, masks: Masking | None) -> None:
        pass

    def after_step(self, step: int, masks: Masking | None) -> None:
        pass

    def on_epoch_end(self, epoch: int, masks: Masking | None) -> None:
        pass

    # ----------------------------------------------------------- persistence
    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "events": list(self.events)}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.events = list(state["events"])

    # ---------------------------------------------------------------- helpers
    def random_scores(self, like: torch.Tensor) -> torch.Tensor:
        """Uniform [0, 1) scores from the method's generator, on ``like``'s device."""
        return torch.rand(like.shape, generator=self.generator).to(like.device)

    def log(self, step: int, layer: str, change: dict[str, int]) -> None:
        self.events.append({"step": step, "layer": layer, **change})


Method.init_masks = _then_init_weights(Method.init_masks)
