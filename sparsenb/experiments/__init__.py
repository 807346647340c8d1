"""One module per notebook: what the notebook runs, summarises, plots and claims.

Modules are named after their notebook without its number (``notebooks/07_ctre.ipynb`` ->
:mod:`sparsenb.experiments.ctre`); :mod:`.common` holds the run helpers several notebooks share.
Algorithms do not live here: a method, criterion, layer or model that a second notebook could use
belongs in the library (``core``, ``methods``, ``layers``, ``models``, ``train``).
Experiments may need the optional extras (matplotlib, torch_geometric, sktime).
"""
