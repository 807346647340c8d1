"""Datasets: one registry (:mod:`.registry`) and one module per kind of data.

``sparsenb.data.load(name)`` returns a :class:`TensorData` (or a graph); ``available()`` lists
the names. The built-in sets (``digits``, ``mnist1d``, ``mnist5k``, ``mnist``) live in the
registry; the kinds below register theirs on first use, so their optional dependencies load
only when needed:

* :mod:`.images`: CIFAR-10 (JPEG subset) and image helpers.
* :mod:`.tabular`: scikit-feature sets (madelon, PCMAC, BASEHOCK, Yale).
* :mod:`.timeseries`: the ``ucr:<Name>`` family (needs the ``timeseries`` extra, sktime).
* :mod:`.graphs`: Planetoid citation graphs (Cora, Citeseer, Pubmed).
"""
from .registry import (DataError, TensorData, available, data_dir, fetch, load, register, register_family,
                       split_validation)

__all__ = ["DataError", "TensorData", "available", "data_dir", "fetch", "load", "register", "register_family",
           "split_validation"]
