"""Time-series classification sets of the UCR/UEA archive: ``ucr:<Name>``.

Every name sktime's ``load_UCR_UEA_dataset`` knows is a member of the family, e.g.
``ucr:GunPoint``, ``ucr:ItalyPowerDemand`` (univariate) or ``ucr:BasicMotions``
(multivariate, 6 channels). The sets sktime ships inside its package load fully
offline (:data:`BUNDLED` is read from sktime's data folder: ACSF1, ArrowHead,
BasicMotions, GunPoint, ItalyPowerDemand, JapaneseVowels, OSULeaf, PLAID, ...).
Any other name is looked for, in order, in ``$SPARSENB_DATA_MIRROR/ucr/<Name>/``,
in the cache ``data_dir()/ucr/<Name>/`` and finally downloaded by sktime from
timeseriesclassification.com into that cache; with no network this raises a
:class:`~sparsenb.data.DataError` that says where to put the ``.ts`` files.

What the loader returns (a :class:`~sparsenb.data.TensorData`):

* ``X``: float32 ``(N, channels, length)``, the archive's official train/test split;
  missing values (NaN) set to 0; by default every series is z-normalised per
  channel, ``(x - mean_t x) / std_t x`` (a constant series is only centred), the
  UCR archive's own convention; ``normalize="none"`` keeps the raw values
  (the DSN code trains on the archive files as they are, which for UCR sets are
  already z-normalised).
* ``y``: int64 labels ``0..C-1``, the train split's distinct labels sorted
  (numerically when all are numbers, else as strings).

Plain aliases ``gunpoint``, ``italypowerdemand`` and ``basicmotions`` are registered too.

**Unequal lengths** (e.g. JapaneseVowels: 12 channels, 7-29 steps; PLAID: 100-1344 steps):
the models here need one length, so, as the DSN code does (``utils/TSC_data_loader.py``: every
series is padded at its end with NaN to the longest one, then NaN -> 0), every series is
**zero-padded at its end** to the longest series of *both* splits (so train and test share one
length); z-normalisation, when on, uses each series' own observed steps, before padding.
The source string says how many series were padded and the range of lengths.
"""
from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from .registry import MIRROR_ENV, DataError, TensorData, _tensor_data, data_dir, register, register_family
from .._optional import require

__all__ = ["BUNDLED", "load_ucr", "znormalize", "encode_labels", "pad_series"]


def _bundled() -> tuple[str, ...]:
    """Names of the classification sets inside sktime's package (readable offline)."""
    try:
        import sktime.datasets as skd
    except ModuleNotFoundError:
        return ()
    folder = pathlib.Path(skd.__file__).parent / "data"
    return tuple(sorted(p.name for p in folder.iterdir()
                        if p.is_dir() and (p / f"{p.name}_TRAIN.ts").exists()))


BUNDLED: tuple[str, ...] = _bundled()


def znormalize(X: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Per series and channel: ``(x - mean) / std`` over time; a series with ``std < eps`` is only centred.

    ``X``: ``(N, C, L)``; returns float64 of the same shape.
    """
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=-1, keepdims=True)
    std = X.std(axis=-1, keepdims=True)
    return (X - mean) / np.where(std < eps, 1.0, std)


def encode_labels(y_train: np.ndarray, y_test: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Map labels to ``0..C-1`` by the sorted distinct train labels; returns (y_train, y_test, classes).

    Labels that are all numbers sort numerically ("2" < "10"), others as strings.
    Raises ValueError when the test split has a label the train split lacks.
    """
    y_train = np.asarray(y_train).astype(str)
    y_test = np.asarray(y_test).astype(str)
    distinct = sorted(set(y_train.tolist()))
    try:
        classes = sorted(distinct, key=float)
    except ValueError:
        classes = distinct
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(y_test.tolist()) - set(classes))
    if unknown:
        raise ValueError(f"test labels {unknown} do not occur in the training split (classes {classes})")
    return (np.array([index[c] for c in y_train], dtype=np.int64),
            np.array([index[c] for c in y_test], dtype=np.int64), classes)


def _read_split(name: str, split: str, extract_path: str | None) -> tuple[list[np.ndarray], np.ndarray]:
    """The series of one split as a list of float64 ``(channels, length_i)`` arrays, and the labels."""
    load_UCR_UEA_dataset = require("sktime.datasets", "timeseries", "the ucr:<Name> datasets").load_UCR_UEA_dataset

    try:
        X, y = load_UCR_UEA_dataset(name, split=split, return_type="numpy3D", extract_path=extract_path)
        return list(np.asarray(X, dtype=np.float64)), np.asarray(y)
    except ValueError:  # unequal lengths cannot be stacked: read the nested frame, one series at a time
        X, y = load_UCR_UEA_dataset(name, split=split, return_type="nested_univ", extract_path=extract_path)
    series = []
    for i in range(len(X)):
        channels = [np.asarray(X.iloc[i, c], dtype=np.float64) for c in range(X.shape[1])]
        length = max(len(ch) for ch in channels)
        series.append(np.stack([np.pad(ch, (0, length - len(ch)), constant_values=np.nan) for ch in channels]))
    return series, np.asarray(y)


def pad_series(series: list[np.ndarray], length: int) -> np.ndarray:
    """Stack ``(channels, length_i)`` series into ``(N, channels, length)``, zero-padding each at its end."""
    out = np.zeros((len(series), series[0].shape[0], length), dtype=np.float64)
    for i, x in enumerate(series):
        out[i, :, :x.shape[1]] = x
    return out


def _normalize_observed(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """:func:`znormalize` of one ``(channels, length)`` series over its observed (non-NaN) steps."""
    mean = np.nanmean(x, axis=-1, keepdims=True)
    std = np.nanstd(x, axis=-1, keepdims=True)
    return (x - np.nan_to_num(mean)) / np.where(~(std >= eps), 1.0, std)


def _source_folder(name: str) -> tuple[str | None, str]:
    """Where to read ``name`` from: (extract_path for sktime, description)."""
    if name in BUNDLED:
        return None, "sktime bundled copy"
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        folder = pathlib.Path(mirror).expanduser() / "ucr"
        if (folder / name / f"{name}_TRAIN.ts").exists():
            return str(folder), f"mirror {folder / name}"
    cache = data_dir() / "ucr"
    cache.mkdir(parents=True, exist_ok=True)
    return str(cache), f"cache {cache / name} (downloaded by sktime if missing)"


def load_ucr(name: str, normalize: str = "series") -> TensorData:
    """The UCR/UEA set ``name`` (case as in the archive, e.g. ``"GunPoint"``) as a TensorData.

    Args:
        name: archive name; bundled sets are offline, others need the mirror, the cache or the network.
        normalize: ``"series"`` (z-normalise every series per channel, default) or ``"none"``.

    Raises:
        DataError: the set is not bundled, not in the mirror/cache and cannot be downloaded.
        ValueError: unknown ``normalize``, or test labels absent from train.
    """
    if normalize not in ("series", "none"):
        raise ValueError(f"normalize must be 'series' or 'none', got {normalize!r}")
    if not name:
        raise ValueError("give a set name, e.g. 'ucr:GunPoint'; bundled offline: " + ", ".join(BUNDLED))
    extract_path, where = _source_folder(name)
    try:
        X_train, y_train = _read_split(name, "train", extract_path)
        X_test, y_test = _read_split(name, "test", extract_path)
    except ValueError:
        raise
    except Exception as err:  # noqa: BLE001 - sktime raises several kinds when the download fails
        raise DataError(
            f"UCR/UEA set {name!r} could not be loaded from the {where}: {type(err).__name__}: {err}\n"
            f"Bundled with sktime (offline): {', '.join(BUNDLED) or '(sktime not installed)'}. "
            f"To fix: check the spelling (names are case-sensitive, as on timeseriesclassification.com), "
            f"or put {name}_TRAIN.ts and {name}_TEST.ts in $SPARSENB_DATA_MIRROR/ucr/{name}/ or "
            f"{data_dir() / 'ucr' / name}/, or allow network access so sktime can download them.") from err
    lengths = [x.shape[1] for x in X_train + X_test]
    length = max(lengths)
    padded = sum(n < length for n in lengths)
    if padded:
        if normalize == "series":  # over each series' observed steps, before padding
            X_train, X_test = [_normalize_observed(x) for x in X_train], [_normalize_observed(x) for x in X_test]
        X_train = np.nan_to_num(pad_series(X_train, length), nan=0.0)
        X_test = np.nan_to_num(pad_series(X_test, length), nan=0.0)
    else:
        X_train, X_test = np.nan_to_num(np.stack(X_train), nan=0.0), np.nan_to_num(np.stack(X_test), nan=0.0)
        if normalize == "series":
            X_train, X_test = znormalize(X_train), znormalize(X_test)
    how = (f"unequal lengths {min(lengths)}..{length}: {padded} of {len(lengths)} series zero-padded at the end to "
           f"{length} (as the DSN code)" if padded else f"length {length}")
    ytr, yte, classes = encode_labels(y_train, y_test)
    return _tensor_data(f"ucr:{name}", X_train, ytr, X_test, yte, len(classes),
                        f"UCR/UEA archive {name} via sktime load_UCR_UEA_dataset ({where}); official "
                        f"train/test split; {how}; NaN -> 0; normalize={normalize!r}; classes {classes} -> 0..{len(classes) - 1}")


@register_family("ucr", "UCR/UEA time-series classification set <Name> via sktime (bundled sets offline: "
                        "GunPoint, ItalyPowerDemand, BasicMotions, ...); (N, channels, length), z-normalised")
def _load_family(member: str, **kwargs: Any) -> TensorData:
    return load_ucr(member, **kwargs)


for _alias, _name in (("gunpoint", "GunPoint"), ("italypowerdemand", "ItalyPowerDemand"),
                      ("basicmotions", "BasicMotions")):
    register(_alias, f"alias of ucr:{_name}")(lambda _n=_name, **kw: load_ucr(_n, **kw))
