"""Shared figures: panels that are compared share one colour scale and one labelled colour bar."""
import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from sparsenb.nb import plots

matplotlib.use("Agg")


def test_input_connectivity_panels_share_one_norm_and_one_labelled_colorbar():
    a = np.arange(16.0)          # counts 0..15
    b = np.full(16, 3.0)         # a flat panel: on its own scale it would look like any other flat image
    fig = plots.input_connectivity({"set": a, "rigl": b}, (4, 4))
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 2
    assert all(im.norm is images[0].norm for im in images), "panels must share one norm"
    assert (images[0].norm.vmin, images[0].norm.vmax) == (0.0, 15.0)
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colorbars) == 1, "one colour bar for all panels"
    assert colorbars[0].get_ylabel() == "connections kept per input pixel"
    plt.close(fig)
