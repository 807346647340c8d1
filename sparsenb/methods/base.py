"""The method hook contract and the registry."""
from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from typing import Any, Callable, ClassVar, Mapping, Sequence

import torch
from torch import nn

from ..core.distributions import check_distribution, check_empty_layers, check_sparsity, layer_nnz, ON_EMPTY
from ..core import criteria
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
    cls = _method_class(name)
    options = cls.options()
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise ValueError(f"method {name!r} has no option {', '.join(map(repr, unknown))}; "
                         f"its options are {sorted(options)}")
    return cls(**kwargs)


def _method_class(name: str) -> type["Method"]:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {available()}")
    return METHODS[name]


def build(name: str, settings: Mapping[str, Any], names: Mapping[str, str] | None = None) -> "Method":
    """The method ``name`` built from a config: a dict of options and/or a notebook's settings.

    Keys of ``settings`` are read by case:

    * **lower case**: an option of the method (:meth:`Method.options`), passed as is; a key that is
      not an option is an error naming the method and its options;
    * **upper case**: a notebook setting (e.g. a notebook's resolved ``cfg``). It is passed only if
      the method's ``SETTINGS`` map (setting name -> option name, merged over the class hierarchy)
      or ``names`` lists it: every method reads ``SPARSITY`` and ``DISTRIBUTION``, RigL reads
      ``DELTA_T`` as ``update_every`` and ``ALPHA`` as ``drop_fraction``, SET ``ZETA`` as
      ``drop_fraction`` (see each class's ``SETTINGS``). Any other upper-case key (``EPOCHS``,
      ``LR``, ``INIT`` ...) belongs to the notebook and is ignored.

    ``names`` adds setting-name -> option-name pairs for this call (e.g. ``{"ZETA": "drop_fraction"}``
    for a notebook whose RigL arm takes its drop fraction from ``ZETA``); for the options it names
    it replaces the method's own ``SETTINGS``. An option given in lower case wins over any setting;
    two settings present for the same option are an error. Options absent keep their defaults.

    Example::

        build("rigl", {"DELTA_T": 50, "ALPHA": 0.3, "EPOCHS": 10, "sparsity": 0.9, "seed": 1})
        # == get("rigl", update_every=50, drop_fraction=0.3, sparsity=0.9, seed=1)
    """
    cls = _method_class(name)
    options = cls.options()
    extra = dict(names or {})
    for key, option in extra.items():
        if option not in options:
            raise ValueError(f"method {name!r} has no option {option!r} (named for setting {key!r}); "
                             f"its options are {sorted(options)}")
    mapping = {k: v for k, v in cls.setting_names().items() if v not in extra.values()}
    mapping.update(extra)
    kwargs: dict[str, Any] = {}
    given: dict[str, str] = {}  # option -> the settings key it came from
    for key, value in settings.items():
        if not key.isupper():
            if key not in options:
                raise ValueError(f"method {name!r} has no option {key!r}; its options are {sorted(options)}")
            kwargs[key], given[key] = value, key
    for key, value in settings.items():
        option = mapping.get(key) if key.isupper() else None
        if option is None or given.get(option) == option:
            continue
        if option in given:
            raise ValueError(f"method {name!r}: settings {given[option]!r} and {key!r} both give option "
                             f"{option!r}; pass one of them (or the option {option!r} itself)")
        kwargs[option], given[option] = value, key
    return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of a method: ``name``, ``default`` (``inspect.Parameter.empty`` if required), ``help``."""

    name: str
    default: Any
    help: str


def _args_help(doc: str | None) -> dict[str, str]:
    """``{name: help}`` from the ``Args:`` section of a Google-style docstring (``a, b: help`` documents both)."""
    out: dict[str, str] = {}
    lines = inspect.cleandoc(doc or "").splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Args:"]
    if not starts:
        return out
    indent, current = None, []
    for line in lines[starts[0] + 1:]:
        if not line.strip():
            break
        width = len(line) - len(line.lstrip())
        indent = width if indent is None else indent
        if width < indent:
            break
        entry = re.match(r"([\w*, ]+):\s*(.*)", line.strip()) if width == indent else None
        if entry:
            current = [n.strip() for n in entry.group(1).split(",") if n.strip() and not n.strip().startswith("*")]
            for n in current:
                out[n] = entry.group(2).strip()
        else:
            for n in current:
                out[n] = f"{out[n]} {line.strip()}"
    return out


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

    SETTINGS: ClassVar[dict[str, str]] = {"SPARSITY": "sparsity", "DISTRIBUTION": "distribution"}
    """Notebook setting name -> option name, read by :func:`build`; a subclass lists only its own
    (they are merged over the class hierarchy, see :meth:`setting_names`)."""

    yields_ensemble: ClassVar[bool] = False
    """True if one training run yields several models (:meth:`snapshots`), e.g. EDST's tickets."""

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

    # ------------------------------------------------------------- options
    @classmethod
    def options(cls) -> dict[str, Option]:
        """``{name: Option(name, default, help)}``: the keyword options of this method.

        Taken from the ``__init__`` signatures along the class hierarchy (a class whose ``__init__``
        takes ``**kwargs`` passes them on to its base) and the ``Args:`` sections of the class
        docstrings (the first class that documents an option gives its help). The first ``__init__``
        that mentions an option gives its default.
        """
        found: dict[str, Option] = {}
        helps: dict[str, str] = {}
        for klass in cls.__mro__:
            for key, text in _args_help(vars(klass).get("__doc__")).items():
                helps.setdefault(key, text)
        for klass in cls.__mro__:
            if "__init__" not in vars(klass):
                continue
            params = inspect.signature(vars(klass)["__init__"]).parameters
            for p, v in params.items():
                if p != "self" and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD) and p not in found:
                    found[p] = Option(p, v.default, "")
            if not any(v.kind == v.VAR_KEYWORD for v in params.values()):
                break
        return {p: Option(p, o.default, helps.get(p, "")) for p, o in found.items()}

    @classmethod
    def setting_names(cls) -> dict[str, str]:
        """Notebook setting name -> option name: the ``SETTINGS`` of this class and its bases (see :func:`build`)."""
        out: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            out.update(vars(klass).get("SETTINGS", {}))
        options = cls.options()
        return {k: v for k, v in out.items() if v in options}

    # -------------------------------------------------------- costs and schedule
    def step_macs(self, f_sparse: float, f_dense: float) -> float:
        """Average training MACs per example per optimizer step (RigL, Evci et al. 2020, App. H):
        ``3 f_S`` (forward, gradient w.r.t. activations, gradient w.r.t. weights, all sparse).
        Methods that need more (dense training, dense gradients at mask updates) override it.
        ``f_sparse`` / ``f_dense``: forward MACs per example of the sparse / dense network
        (:func:`sparsenb.train.flops.forward_macs`)."""
        return 3.0 * f_sparse

    def dense_gradient_steps(self) -> int:
        """Optimizer steps so far that needed the dense weight gradient (gradient-based growth): 0 here."""
        return 0

    def training_epochs(self, epochs: int) -> int:
        """The epochs the Trainer must run when the notebook asks for ``epochs`` (EDST fixes its own)."""
        return epochs

    def lr_schedule(self) -> Callable[[int], float] | None:
        """The method's own learning-rate multiplier per epoch (for ``LambdaLR``), or ``None`` to use the
        notebook's schedule (the default)."""
        return None

    def snapshots(self) -> list[dict | None]:
        """The models one run yields, as ``state_dict`` copies; ``None`` stands for the final weights
        (the default: one model). EDST returns its tickets."""
        return [None]

    # ----------------------------------------------------------- persistence
    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "events": list(self.events)}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.events = list(state["events"])

    # ---------------------------------------------------------------- helpers
    def random_scores(self, like: torch.Tensor) -> torch.Tensor:
        """Uniform [0, 1) scores from the method's generator, on ``like``'s device (:func:`sparsenb.core.criteria.random`)."""
        return criteria.random(like, generator=self.generator)

    def log(self, step: int, layer: str, change: dict[str, int]) -> None:
        self.events.append({"step": step, "layer": layer, **change})


Method.init_masks = _then_init_weights(Method.init_masks)
