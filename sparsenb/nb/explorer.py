"""Interactive explorer of sparse masks and dynamic sparse training (``notebooks/00_explore.ipynb``).

:class:`Explorer` builds ipywidgets (model, method, distribution, sparsity, layer; "train to the next
update" and "reset" buttons), holds the state (model, method, masks, optimizer, step) and draws two
figures into ``ipywidgets.Image`` widgets as PNG bytes, so it runs with or without a kernel: a test
sets ``ex.sparsity.value = 0.95`` or calls ``ex.train_button.click()`` and reads the state.

What it shows:

* per-layer density of the current masks (bars; the chosen global density as a line);
* the mask of one layer as an image (rows = outputs, columns = inputs, conv kernels flattened),
  coloured by its history since the last reset: kept throughout, grown, dropped, never present;
  beside it the share of the layer's initial connections replaced so far, per update.

Training is on scikit-learn's ``digits`` (8x8 images, offline) with Adam (lr 0.01, batch 64; it learns
within a few clicks, where SGD at lr 0.1 takes epochs on a 90 % sparse net with PyTorch's default init). One click of "train" runs ``steps_per_update`` optimizer steps and one topology update:

* ``rigl``: :class:`sparsenb.methods.rigl.RigL` with ``update_every = steps_per_update``; its update runs
  in ``after_backward`` of every ``update_every``-th step (the schedule's ``T_end`` is put far away so
  the drop fraction stays near ``alpha``);
* ``set``: :class:`sparsenb.methods.set.SET`, whose update runs at an epoch end in the paper; here
  an "epoch" is ``steps_per_update`` steps;
* ``static``: the mask never changes (the baseline).

The masks always come from the method's ``init_masks`` (exact per-layer nnz of
:func:`sparsenb.core.distributions.layer_nnz`), and mask updates go through
:meth:`sparsenb.core.masks.Masking.update`, so the explorer shows the library's own behaviour.
"""
from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch

from ..data import registry as D
from .. import methods as M
from ..core.distributions import DISTRIBUTIONS
from ..models.classic import build
from ..train.trainer import evaluate, make_optimizer, set_seed

__all__ = ["Explorer", "MODELS", "METHODS"]

MODELS = {"lenet300": {}, "mlp": {"hidden": (128, 128)}}  # digits: 64 inputs -> 300-100 / 128-128 -> 10
METHODS = ("static", "set", "rigl")
# mask image codes: 0 never present, 1 kept since the reset, 2 grown since the reset, 3 dropped since the reset
MASK_COLOURS = ("#f4f4f4", "#202020", "#1a9641", "#d7191c")
MASK_LABELS = ("absent", "kept since reset", "grown since reset", "dropped since reset")
FAR_AWAY = 10 ** 9  # RigL's total_steps in the explorer: T_end is never reached


class Explorer:
    """Widgets plus state of the mask explorer; see the module docstring.

    Args:
        model, method, distribution, sparsity: the initial choices (the widgets' values).
        steps_per_update: optimizer steps per click of "train" (one topology update each).
        seed: seed of the weights, the masks and the batch order (reset uses it again).

    Attributes (state, all read-only for callers):
        net, method_obj, masks, optimizer: the current model, method, :class:`~sparsenb.core.masks.Masking`, Adam.
        step: optimizer steps taken since the last reset; ``updates``: topology updates since then.
        initial: layer name -> bool mask at the reset; ``replaced``: per update, layer -> share of the
            initial connections no longer present.
        figures: ``{"densities": Figure, "mask": Figure}``, the last figures drawn (PNG bytes in the
            ``density_image`` / ``mask_image`` widgets).
    """

    def __init__(self, model: str = "lenet300", method: str = "set", distribution: str = "erk",
                 sparsity: float = 0.9, steps_per_update: int = 20, seed: int = 0):
        import ipywidgets as W

        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; choose one of {sorted(MODELS)}")
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; the explorer shows {METHODS}")
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown distribution {distribution!r}; choose one of {DISTRIBUTIONS}")
        if not 0.5 <= sparsity <= 0.99:
            raise ValueError(f"sparsity must be in [0.5, 0.99] in the explorer, got {sparsity}")
        if steps_per_update < 1:
            raise ValueError(f"steps_per_update must be >= 1, got {steps_per_update}")
        self.seed = seed
        self._quiet = False
        self.data = D.load("digits")
        self.figures: dict[str, Any] = {}
        self.model = W.Dropdown(options=list(MODELS), value=model, description="model")
        self.method = W.Dropdown(options=list(METHODS), value=method, description="method")
        self.distribution = W.Dropdown(options=list(DISTRIBUTIONS), value=distribution, description="distribution")
        self.sparsity = W.FloatSlider(value=sparsity, min=0.5, max=0.99, step=0.01, description="sparsity",
                                      continuous_update=False, readout_format=".2f")
        self.steps = W.IntSlider(value=steps_per_update, min=1, max=100, description="steps/update",
                                 continuous_update=False)
        self.layer = W.Dropdown(description="layer")
        self.train_button = W.Button(description="train to next update", button_style="primary")
        self.reset_button = W.Button(description="reset")
        self.status = W.HTML()
        self.density_image = W.Image(format="png")
        self.mask_image = W.Image(format="png")
        for w in (self.model, self.method, self.distribution, self.sparsity):
            w.observe(lambda change: self.rebuild(), names="value")
        self.steps.observe(lambda change: self.rebuild(), names="value")
        self.layer.observe(lambda change: self.draw_mask(), names="value")
        self.train_button.on_click(lambda button: self.train())
        self.reset_button.on_click(lambda button: self.rebuild())
        self.widget = W.VBox([
            W.HBox([self.model, self.method, self.distribution]),
            W.HBox([self.sparsity, self.steps]),
            W.HBox([self.layer, self.train_button, self.reset_button]),
            self.status,
            W.HBox([self.density_image, self.mask_image]),
        ])
        self.rebuild()

    def _ipython_display_(self) -> None:  # ``ex`` as the last line of a cell shows the controls
        from IPython.display import display

        display(self.widget)

    # ----------------------------------------------------------------- state
    def rebuild(self) -> None:
        """New model, method, masks and optimizer from the widgets' values (seeded: same choices, same start).

        Seeds torch's global generator with ``seed`` (the weights' init), as :func:`sparsenb.train.set_seed` does.
        """
        set_seed(self.seed)
        d = self.data
        self.net = build(self.model.value, d.input_shape, d.num_classes, **MODELS[self.model.value])
        options: dict[str, Any] = dict(sparsity=self.sparsity.value, distribution=self.distribution.value,
                                       seed=self.seed)
        if self.method.value == "rigl":
            options["update_every"] = self.steps.value
        self.method_obj = M.get(self.method.value, **options)
        self.masks = self.method_obj.init_masks(self.net)
        self.method_obj.setup(total_steps=FAR_AWAY, steps_per_epoch=self.steps.value, epochs=0)
        self.optimizer = make_optimizer(self.net, "adam", lr=0.01)
        self.masks.attach(self.optimizer)
        self.loader, self.test_loader = d.loaders(batch_size=64, seed=self.seed)
        self._batches = iter(self.loader)
        self.step = self.updates = 0
        self.initial = {mp.name: mp.mask.clone() for mp in self.masks}
        self.replaced: list[dict[str, float]] = []
        self.test_acc = self.evaluate()
        names = [mp.name for mp in self.masks]
        keep = self.layer.value if self.layer.value in names else names[0]
        self._quiet = True  # changing the options fires the layer callback: draw once, below
        try:
            self.layer.options = names
            self.layer.value = keep
        finally:
            self._quiet = False
        self.draw()

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return next(self._batches)
        except StopIteration:
            self._batches = iter(self.loader)
            return next(self._batches)

    def train(self) -> None:
        """Train ``steps`` optimizer steps, ending with one topology update (none for ``static``); redraw.

        The method's hooks in a plain loop, written out rather than the Trainer's: a click runs a few
        steps, and the batch iterator and the step count (numbered from 1) carry over between clicks,
        while the Trainer runs whole epochs."""
        self.net.train()
        loss_fn = torch.nn.CrossEntropyLoss()
        k = self.steps.value
        for _ in range(k):
            x, y = self._batch()
            self.optimizer.zero_grad(set_to_none=True)
            loss_fn(self.net(x), y).backward()
            self.step += 1  # numbered from 1 here, so RigL's update (step % update_every == 0) is this click's last step
            self.method_obj.after_backward(self.step, self.masks)
            self.optimizer.step()
            self.method_obj.after_step(self.step, self.masks)
        self.method_obj.on_epoch_end(self.updates, self.masks)  # SET's update; a no-op for static and RigL
        self.updates += 1
        self.replaced.append({mp.name: self.replaced_share(mp.name) for mp in self.masks})
        self.test_acc = self.evaluate()
        self.draw()

    def evaluate(self) -> float:
        """Test accuracy on the digits test split (450 images)."""
        return evaluate(self.net, self.test_loader)["acc"]

    def densities(self) -> dict[str, float]:
        """Layer name -> density (kept / all weights) of the current masks."""
        return {mp.name: int(mp.mask.sum()) / mp.mask.numel() for mp in self.masks}

    def replaced_share(self, name: str) -> float:
        """Share of the layer's connections at the reset that are absent now."""
        start = self.initial[name]
        return int((start & ~self.masks[name]).sum()) / max(1, int(start.sum()))

    def mask_codes(self, name: str | None = None) -> np.ndarray:
        """The layer's mask as a 2-D int array (outputs x inputs; conv kernels flattened), coded
        0 absent, 1 kept since the reset, 2 grown since the reset, 3 dropped since the reset."""
        name = name or self.layer.value
        now, start = self.masks[name].cpu(), self.initial[name].cpu()
        codes = torch.zeros(now.shape, dtype=torch.int64)
        codes[now & start], codes[now & ~start], codes[~now & start] = 1, 2, 3
        return codes.reshape(now.shape[0], -1).numpy()

    # --------------------------------------------------------------- figures
    def draw(self) -> None:
        self.draw_densities()
        self.draw_mask()

    def draw_densities(self) -> None:
        import matplotlib.pyplot as plt

        dens = self.densities()
        fig, ax = plt.subplots(figsize=(4.2, 3.2))
        x = np.arange(len(dens))
        ax.bar(x, list(dens.values()), color="#4c72b0")
        for i, mp in enumerate(self.masks):
            ax.text(i, dens[mp.name], f"{int(mp.mask.sum())}", ha="center", va="bottom", fontsize=7)
        ax.axhline(1 - self.sparsity.value, color="k", ls="--", lw=1, label="global density")
        ax.set_xticks(x, [f"{n}\n{'x'.join(map(str, self.masks[n].shape))}" for n in dens], fontsize=7)
        ax.set(ylim=(0, 1.08), ylabel="density (kept / all)",
               title=f"{self.distribution.value}: {self.masks.nnz()} of {self.masks.numel()} weights kept")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
        self._show(fig, "densities", self.density_image)

    def draw_mask(self) -> None:
        if self._quiet or not self.layer.value:
            return
        import matplotlib.pyplot as plt
        from matplotlib.colors import BoundaryNorm, ListedColormap
        from matplotlib.patches import Patch
        from matplotlib.ticker import MaxNLocator

        name = self.layer.value
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(7.5, 3.6), gridspec_kw={"width_ratios": [3, 2]})
        ax.imshow(self.mask_codes(name), cmap=ListedColormap(MASK_COLOURS),
                  norm=BoundaryNorm(np.arange(-0.5, 4), 4), aspect="auto", interpolation="nearest")
        ax.set(xlabel="input", ylabel="output",
               title=f"{name}: {self.method.value}, step {self.step}, update {self.updates}")
        ax.title.set_fontsize(9)
        ax.legend(handles=[Patch(facecolor=c, edgecolor="0.5", label=t) for c, t in zip(MASK_COLOURS, MASK_LABELS)],
                  fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
        ax2.plot(range(len(self.replaced) + 1), [0.0] + [r[name] for r in self.replaced], marker="o")
        ax2.set(xlabel="update", ylabel="initial connections replaced", ylim=(0, 1),
                title=f"test accuracy {100 * self.test_acc:.1f} %")
        ax2.title.set_fontsize(9)
        ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax2.grid(alpha=0.3)
        fig.tight_layout()
        self._show(fig, "mask", self.mask_image)
        self.status.value = (f"<b>{self.masks.nnz()}</b> of {self.masks.numel()} weights kept "
                             f"(density {self.masks.density():.4f}); step {self.step}; "
                             f"test accuracy {100 * self.test_acc:.1f} %")

    def _show(self, fig: Any, key: str, image: Any) -> None:
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
        image.value = buf.getvalue()
        old = self.figures.get(key)
        if old is not None:
            plt.close(old)
        self.figures[key] = fig
