"""Tabular datasets of the scikit-feature repository: ``madelon``, ``PCMAC``, ``BASEHOCK``, ``Yale``.

Li, Cheng, Wang, Morstatter, Trevino, Tang, Liu (2017), "Feature Selection: A
Data Perspective", ACM Computing Surveys 50(6); files from
https://github.com/jundongl/scikit-feature (``skfeature/data/<NAME>.mat``,
MATLAB files with an ``X`` (N, D) and a ``Y`` (N, 1) array). The CTRE paper
(Atashgahi et al. 2022) trains its extreme-sparsity MLPs on them.

Every file is fetched through :func:`sparsenb.data.fetch` (cache, then the
``SPARSENB_DATA_MIRROR`` folder at ``scikit-feature/<NAME>.mat``, then the
canonical URL) and verified against its sha256.

**Any other file of the repository** loads as ``scikit-feature:<NAME>`` (e.g.
``scikit-feature:lung``, ``scikit-feature:COIL20``; names as the repository spells them): its
checksum is the mirror's ``SHA256SUMS`` entry when there is one (then verified); otherwise
the file is used as fetched and its sha256 is printed and kept in ``TensorData.sha256``.
It gets the stratified 80/20 split below; ``scaling="paper"`` means min-max for it (the CTRE
code min-max scales every dataset but madelon). A file of your own with the same keys
``X`` (N, D) and ``Y`` (N, 1) loads as ``file:/path/to/data.mat`` (:func:`sparsenb.data.load_file`).

Splits (deterministic, fixed; the test split is never used for fitting anything):

* ``madelon``: the file stacks the UCI MADELON ``train`` (rows 0..1999, 1000
  per class) and ``valid`` (rows 2000..2599, 300 per class) sets. Like the
  CTRE code (``utils.load_data``) we train on UCI train and test on UCI valid.
* ``PCMAC``, ``BASEHOCK``, ``Yale``: the files have no split; we use a
  stratified 80/20 split, ``sklearn.model_selection.train_test_split(
  test_size=0.2, random_state=42, stratify=y)`` (our choice, the paper does
  not state its split; 42 is the seed its code uses for its other splits).

Scaling (``scaling=`` of :func:`load_scikit_feature`; statistics of the
*training* split only):

* ``"standard"`` (the default): zero mean, unit variance per feature;
  constant features get std 1 (they become 0).
* ``"minmax"``: ``(x - min) / (max - min)`` per feature, so the training split
  lies in [0, 1] (test values may fall outside); constant features get range 1
  (they become 0). This is sklearn's ``MinMaxScaler``.
* ``"paper"``: what the CTRE code (``utils.load_data``) does: ``StandardScaler``
  on madelon, ``MinMaxScaler`` on every other dataset (:data:`PAPER_SCALING`).

Labels are remapped to ``0..C-1`` in sorted order of the original labels.
Inputs are float32 ``(N, D)``, labels int64 ``(N,)``.
"""
from __future__ import annotations

import numpy as np

import pathlib

from .registry import DataError, TensorData, _tensor_data, fetch_any, register, register_family

__all__ = ["SCIKIT_FEATURE", "SCALINGS", "PAPER_SCALING", "standardize", "minmax_scale", "remap_labels",
           "load_scikit_feature", "read_mat", "tabular_split"]

SCIKIT_FEATURE_URL = "https://github.com/jundongl/scikit-feature/raw/master/skfeature/data/{name}.mat"

# name -> (sha256 of <name>.mat, description)
SCIKIT_FEATURE: dict[str, tuple[str, str]] = {
    "madelon": ("7dc9c9ff8d902651948e2df7f9cb6ed38c5d91e4c4159914cecb1ddbc7def12c",
                "MADELON (UCI, synthetic XOR-like): 500 features, 2 classes; UCI train 2000 / UCI valid 600 as test"),
    "PCMAC": ("9999dfccf97ab88f87127dd3457da436acb75cda9f0af4750e7cae5fe1a31b25",
              "PCMAC (20 Newsgroups ibm.pc vs mac, word counts): 3289 features, 2 classes, 1943 rows; "
              "stratified 80/20 split"),
    "BASEHOCK": ("e0452e0f3c0fefdc5cb6352165e4ba4a25c3a2a7b5a5b4d44e103742d6317aa0",
                 "BASEHOCK (20 Newsgroups baseball vs hockey, word counts): 4862 features, 2 classes, 1993 rows; "
                 "stratified 80/20 split"),
    "Yale": ("cccd29abd2c520dd5cc8ff7645b422c2bdadd59406a6b6a0239143d9d44afcf3",
             "Yale faces 32x32 (flattened): 1024 features, 15 classes, 165 rows; stratified 80/20 split"),
}
MADELON_TRAIN_ROWS = 2000  # UCI MADELON train set; the remaining 600 rows are UCI valid
SCALINGS = ("standard", "minmax", "paper")
# the CTRE code's choice (zahraatashgahi/CTRE, code/utils.py load_data): StandardScaler on madelon, MinMax elsewhere
PAPER_SCALING = {"madelon": "standard", "PCMAC": "minmax", "BASEHOCK": "minmax", "Yale": "minmax"}


def _check_pair(X_train: np.ndarray, X_test: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    X_train = np.asarray(X_train, dtype=np.float64)
    X_test = np.asarray(X_test, dtype=np.float64)
    if X_train.ndim != 2 or X_test.ndim != 2 or X_train.shape[1] != X_test.shape[1]:
        raise ValueError(f"{what} needs 2-D arrays with the same number of features, "
                         f"got {X_train.shape} and {X_test.shape}")
    return X_train, X_test


def standardize(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(X - mean) / std`` per feature with the train split's mean and std (std 0 -> 1).

    Args: ``X_train`` (N_train, D), ``X_test`` (N_test, D). Returns float64 arrays of the same shapes.
    """
    X_train, X_test = _check_pair(X_train, X_test, "standardize")
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std[std == 0] = 1.0
    return (X_train - mean) / std, (X_test - mean) / std


def minmax_scale(X_train: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(X - min) / (max - min)`` per feature with the train split's min and max (range 0 -> 1).

    Args: ``X_train`` (N_train, D), ``X_test`` (N_test, D). Returns float64 arrays of the same
    shapes; the train split lies in [0, 1], the test split is not clipped (as sklearn's MinMaxScaler).
    """
    X_train, X_test = _check_pair(X_train, X_test, "minmax_scale")
    lo = X_train.min(axis=0)
    span = X_train.max(axis=0) - lo
    span[span == 0] = 1.0
    return (X_train - lo) / span, (X_test - lo) / span


def remap_labels(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels of any values -> ``0..C-1`` (sorted order). Returns ``(codes (N,), classes (C,))``."""
    classes, codes = np.unique(np.asarray(y).reshape(-1), return_inverse=True)
    return codes.astype(np.int64), classes


def read_mat(path: str | pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (N, D) and ``Y`` flattened to (N,) of a scikit-feature style MATLAB file (X may be sparse)."""
    from scipy.io import loadmat

    mat = loadmat(str(path))
    missing = [k for k in ("X", "Y") if k not in mat]
    if missing:
        raise ValueError(f"{path}: a scikit-feature style .mat file needs the keys 'X' (N, D) and 'Y' (N, 1); "
                         f"it lacks {missing} (it has {sorted(k for k in mat if not k.startswith('__'))})")
    X, Y = mat["X"], mat["Y"]
    if hasattr(X, "toarray"):  # a few scikit-feature files store X as a sparse matrix
        X = X.toarray()
    X, Y = np.asarray(X), np.asarray(Y).reshape(-1)
    if X.ndim != 2 or len(X) != len(Y):
        raise ValueError(f"{path}: X must be (N, D) and Y (N,) or (N, 1); got X {X.shape}, Y {Y.shape}")
    return X, Y


def load_scikit_feature(name: str, scaling: str = "standard") -> TensorData:
    """Load one scikit-feature dataset with the split of the module docstring.

    ``name``: one of :data:`SCIKIT_FEATURE` (checksum pinned) or any other file name of the
    repository (checksum from the mirror's SHA256SUMS if listed, else printed and kept in
    ``TensorData.sha256``). ``scaling``: ``"standard"`` (default), ``"minmax"`` or ``"paper"``
    (the CTRE code's per-dataset choice, :data:`PAPER_SCALING`, min-max for other names).

    Raises:
        DataError: the file is in no cache or mirror and cannot be downloaded (or fails its checksum).
    """
    if not name or "/" in name or name.endswith(".mat"):
        raise ValueError(f"give a scikit-feature file name without extension, e.g. 'lung' or one of "
                         f"{sorted(SCIKIT_FEATURE)}; got {name!r} (a file of your own: 'file:/path/x.mat')")
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; choose one of {SCALINGS}")
    pinned = SCIKIT_FEATURE[name][0] if name in SCIKIT_FEATURE else None
    try:
        path, digest, verified = fetch_any(f"scikit-feature/{name}.mat", SCIKIT_FEATURE_URL.format(name=name),
                                           sha256=pinned)
    except DataError as err:
        raise DataError(f"scikit-feature dataset {name!r}: {err}\nNames are the repository's file names "
                        f"(case-sensitive); pinned here: {sorted(SCIKIT_FEATURE)}") from err
    X, y_raw = read_mat(path)
    data = tabular_split(name if pinned else f"scikit-feature:{name}", X, y_raw, PAPER_SCALING.get(name, "minmax") if scaling == "paper" else scaling,
                         f"scikit-feature {name}.mat ({SCIKIT_FEATURE_URL.format(name=name)}, sha256 {digest}"
                         f"{'' if verified else ', not pinned'})")
    data.sha256 = None if pinned else digest
    return data


def tabular_split(name: str, X: np.ndarray, y_raw: np.ndarray, scaling: str, origin: str) -> TensorData:
    """The split and scaling of the module docstring for ``X`` (N, D), labels ``y_raw`` (N,) of any values:
    madelon's UCI train/valid rows, else a stratified 80/20 split (seed 42); ``scaling`` "standard" or "minmax"."""
    y, classes = remap_labels(y_raw)
    counts = np.bincount(y)
    if name != "madelon" and counts.min() < 2:
        raise ValueError(f"{name}: class {classes[int(counts.argmin())]!r} has {counts.min()} example(s); the "
                         f"stratified 80/20 split needs at least 2 per class")
    if name == "madelon":
        tr, te = np.arange(MADELON_TRAIN_ROWS), np.arange(MADELON_TRAIN_ROWS, len(y))
        split = "UCI train rows 0..1999 / UCI valid rows 2000..2599 as test"
    else:
        from sklearn.model_selection import train_test_split

        tr, te = train_test_split(np.arange(len(y)), test_size=0.2, random_state=42, stratify=y)
        split = "train_test_split(test_size=0.2, random_state=42, stratify=y)"
    if scaling == "standard":
        X_train, X_test = standardize(X[tr], X[te])
        how = "standardised with train mean/std"
    else:
        X_train, X_test = minmax_scale(X[tr], X[te])
        how = "min-max scaled with train min/max"
    return _tensor_data(name, X_train, y[tr], X_test, y[te], len(classes),
                        f"{origin}; {split}; {how}; labels {classes.tolist()} -> 0..{len(classes) - 1}")


def _register(name: str) -> None:
    register(name, SCIKIT_FEATURE[name][1])(lambda: load_scikit_feature(name))


for _name in SCIKIT_FEATURE:
    _register(_name)


@register_family("scikit-feature", "any scikit-feature .mat file by name (X, Y), e.g. scikit-feature:lung; "
                                   "checksum pinned or from the mirror's SHA256SUMS, else printed; stratified 80/20")
def _load_family(member: str, **kwargs) -> TensorData:
    return load_scikit_feature(member, **kwargs)
