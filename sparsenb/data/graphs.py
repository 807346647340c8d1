"""Graph datasets for node classification: the Planetoid citation graphs (Cora, Citeseer, Pubmed).

A graph is not a :class:`sparsenb.data.TensorData` (there is one graph, and the splits are
node masks), so it is a :class:`GraphData`. :func:`load_graph` loads one by name; the names
are also registered in :mod:`sparsenb.data` so that ``sparsenb.data.available()`` lists them
(``sparsenb.data.load("cora")`` then returns a :class:`GraphData` too).

Files
    The eight Planetoid files ``ind.<name>.{x,y,tx,ty,allx,ally,graph,test.index}`` of
    Yang, Cohen, Salakhutdinov (ICML 2016), as PyTorch Geometric and DGL download them,
    from ``https://github.com/kimiyoung/planetoid/raw/master/data/`` or from the mirror
    folder ``$SPARSENB_DATA_MIRROR/planetoid/``, through :func:`sparsenb.data.fetch`, which
    verifies a sha256 checksum. The checksums of all three graphs are pinned below (Cora's
    checked against the mirror; Citeseer's and Pubmed's from a public listing whose Cora values
    match, see the comment there); ``checksums={suffix: sha256}`` overrides them. Offline
    with neither cache nor mirror copy, :class:`sparsenb.data.DataError` names every place
    looked in. The parsing is the same for all three.
    The pickles are read with an unpickler that only builds numpy / scipy.sparse objects.

Parsing (the GCN convention of Kipf & Welling, ICLR 2017, which PyG follows)
    features = rows of ``allx`` then ``tx``; the test rows are put at the node ids listed in
    ``test.index``. Citeseer has test ids with no node in ``tx`` (isolated nodes): the range
    ``min(test.index)..max(test.index)`` is filled with zero feature rows and no label
    (label 0, in no split), as in Kipf's and PyG's loaders. Labels = argmax of the one-hot
    rows. Edges = the ``graph`` adjacency lists, made undirected, without duplicates or self
    loops. Split = the standard Planetoid one: the first ``len(y)`` nodes train (140 for
    Cora), the next 500 validate, the ``test.index`` nodes test (1000).
"""
from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from .registry import DataError, fetch, fetch_any, register, register_family

__all__ = ["GraphData", "load_graph", "graph_names", "parse_planetoid", "PLANETOID_SUFFIXES",
           "PLANETOID_SHA256"]

PLANETOID_URL = "https://github.com/kimiyoung/planetoid/raw/master/data/"
PLANETOID_SUFFIXES = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")
# sha256 of the canonical files (the same bytes as /work/shared/data/planetoid, SHA256SUMS).
PLANETOID_SHA256: dict[str, dict[str, str] | None] = {
    "cora": {
        "x": "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab",
        "y": "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1",
        "tx": "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a",
        "ty": "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad",
        "allx": "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543",
        "ally": "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71",
        "graph": "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d",
        "test.index": "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875",
    },
    # Citeseer and Pubmed: sha256 published with another project's verified Planetoid downloader
    # (the canonical files at kimiyoung/planetoid commit af6abf4); its Cora values equal the
    # mirror's above byte for byte, and its Citeseer values agree with a second, independent
    # listing. Not checked against the files here (no mirror copy): a mismatch raises DataError.
    "citeseer": {
        "x": "d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6",
        "y": "8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924",
        "tx": "539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21",
        "ty": "55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce",
        "allx": "2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668",
        "ally": "f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95",
        "graph": "d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7",
        "test.index": "2af990671580b6b2df5d158d1038f8292e30c9cd821b5453f399659b25b723d4",
    },
    "pubmed": {
        "x": "fbe9cb5c47200d1b7769a26e579be3b7130b556831f9d850e77c4c74f2599b33",
        "y": "e6c807633307a07ed659249006536a147c7999c797f11a2560752990181b41b3",
        "tx": "4eb5f5d0f30f26497eb0ac6ac9719d09c67e284f1ed0385c93f3ef27a671da3d",
        "ty": "ee2e0d4819d9fbcc403689c3bf2e49face401b605932f093bc58ab6461130fdd",
        "allx": "508e538e2abdccdd54c4d3e9f49d638b4af7107d85845f66ddea5a5152658b7e",
        "ally": "0c37bbe3b5014ec365e9d393cf4791925e5ed94fb194305d74f064a8d7b50f0e",
        "graph": "5b89f0036ca22909471f1e6558eb42fa06e0c730a577bde5b058b40638f81dc9",
        "test.index": "b101d421688bbaecbd82e8a18f1e282378d6830f3a37666f28ebc47f844341b5",
    },
}
_N_VAL = 500


@dataclass(repr=False)
class GraphData:
    """One graph for transductive node classification.

    x: float32 (N, F) node features.
    edge_index: int64 (2, E), both directions of every undirected edge, no self loops.
    y: int64 (N,) labels in [0, num_classes).
    train_mask, val_mask, test_mask: bool (N,), disjoint node splits.
    """

    name: str
    x: torch.Tensor
    edge_index: torch.Tensor
    y: torch.Tensor
    train_mask: torch.Tensor
    val_mask: torch.Tensor
    test_mask: torch.Tensor
    num_classes: int
    source: str

    def __post_init__(self) -> None:
        n = self.x.shape[0]
        if self.x.dtype != torch.float32 or self.x.ndim != 2:
            raise TypeError(f"{self.name}: x must be float32 (N, F), got {self.x.dtype} {tuple(self.x.shape)}")
        if self.edge_index.dtype != torch.int64 or self.edge_index.ndim != 2 or self.edge_index.shape[0] != 2:
            raise TypeError(f"{self.name}: edge_index must be int64 (2, E), got {self.edge_index.dtype} "
                            f"{tuple(self.edge_index.shape)}")
        if self.edge_index.numel() and not (0 <= int(self.edge_index.min()) and int(self.edge_index.max()) < n):
            raise ValueError(f"{self.name}: edge_index refers to nodes outside 0..{n - 1}")
        if self.y.dtype != torch.int64 or tuple(self.y.shape) != (n,):
            raise TypeError(f"{self.name}: y must be int64 ({n},), got {self.y.dtype} {tuple(self.y.shape)}")
        for split in ("train", "val", "test"):
            m = getattr(self, f"{split}_mask")
            if m.dtype != torch.bool or tuple(m.shape) != (n,):
                raise TypeError(f"{self.name}: {split}_mask must be bool ({n},), got {m.dtype} {tuple(m.shape)}")
        if (self.train_mask & self.val_mask).any() or (self.train_mask & self.test_mask).any() \
                or (self.val_mask & self.test_mask).any():
            raise ValueError(f"{self.name}: the train/val/test masks overlap")

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_features(self) -> int:
        return int(self.x.shape[1])

    @property
    def num_edges(self) -> int:
        """Directed edges in ``edge_index`` (twice the undirected count)."""
        return int(self.edge_index.shape[1])

    def to(self, device: str | torch.device) -> "GraphData":
        """A copy with every tensor on ``device``."""
        return GraphData(self.name, self.x.to(device), self.edge_index.to(device), self.y.to(device),
                         self.train_mask.to(device), self.val_mask.to(device), self.test_mask.to(device),
                         self.num_classes, self.source)

    def __repr__(self) -> str:
        return (f"GraphData(name={self.name!r}, nodes={self.num_nodes}, features={self.num_features}, "
                f"edges={self.num_edges // 2} undirected, classes={self.num_classes}, "
                f"train/val/test={int(self.train_mask.sum())}/{int(self.val_mask.sum())}/"
                f"{int(self.test_mask.sum())})")


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------


class _ArrayUnpickler(pickle.Unpickler):
    """Builds only numpy arrays, scipy.sparse matrices and plain containers (no code execution)."""

    _BUILTINS = {"list", "dict", "set", "tuple", "int", "float", "object", "frozenset"}

    def find_class(self, module: str, name: str):
        allowed = (module.split(".")[0] == "numpy" or module.startswith("scipy.sparse")
                   or (module == "collections" and name in ("defaultdict", "OrderedDict"))
                   or (module in ("builtins", "__builtin__") and name in self._BUILTINS)
                   or (module == "copy_reg" and name == "_reconstructor"))
        if not allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a Planetoid file")
        if module == "__builtin__":
            module = "builtins"
        if module == "copy_reg":
            module = "copyreg"
        if module.startswith("scipy.sparse.") and name.endswith("_matrix"):
            module = "scipy.sparse"  # old pickles name private modules (scipy.sparse.csr)
        return super().find_class(module, name)


def _unpickle(raw: bytes):
    return _ArrayUnpickler(io.BytesIO(raw), encoding="latin1").load()


def _dense(a) -> np.ndarray:
    return np.asarray(a.todense() if hasattr(a, "todense") else a, dtype=np.float32)


def parse_planetoid(name: str, raw: Mapping[str, bytes], normalize_features: bool = True,
                    source: str = "", n_val: int = _N_VAL) -> GraphData:
    """Build a :class:`GraphData` from the bytes of the eight Planetoid files (keys: the suffixes).

    The validation split is the ``n_val`` (500) nodes after the ``len(y)`` train nodes.

    ``normalize_features`` divides every feature row by its sum (rows of zeros stay zero), as in
    Kipf & Welling's GCN and PyG's ``NormalizeFeatures``.
    """
    missing = [s for s in PLANETOID_SUFFIXES if s not in raw]
    if missing:
        raise ValueError(f"{name}: missing Planetoid files {missing}; need all of {list(PLANETOID_SUFFIXES)}")
    x, y, tx, ty, allx, ally = (_unpickle(raw[s]) for s in ("x", "y", "tx", "ty", "allx", "ally"))
    graph = _unpickle(raw["graph"])
    test_index = np.array([int(t) for t in raw["test.index"].decode().split()], dtype=np.int64)
    x, tx, allx = _dense(x), _dense(tx), _dense(allx)
    y, ty, ally = (np.asarray(a, dtype=np.float32) for a in (y, ty, ally))
    if len(tx) != len(test_index) or len(ty) != len(test_index):
        raise DataError(f"{name}: tx/ty have {len(tx)}/{len(ty)} rows but test.index lists {len(test_index)} nodes")

    # tx row j belongs to node test_index[j]; the test ids fill the range len(allx)..max(test.index).
    # Citeseer has ids in that range with no row in tx (isolated nodes): zero features, no label.
    lo, hi = int(test_index.min()), int(test_index.max())
    if lo != len(allx) or len(np.unique(test_index)) != len(test_index):
        raise DataError(f"{name}: test.index must list distinct node ids from len(allx)={len(allx)} on, "
                        f"got min {lo}, {len(np.unique(test_index))} distinct of {len(test_index)}")
    n = hi + 1
    features = np.zeros((n, allx.shape[1]), dtype=np.float32)
    onehot = np.zeros((n, ally.shape[1]), dtype=np.float32)
    features[:len(allx)], onehot[:len(ally)] = allx, ally
    features[test_index], onehot[test_index] = tx, ty
    labels = onehot.argmax(1).astype(np.int64)
    if normalize_features:
        rowsum = features.sum(1, keepdims=True)
        features = np.divide(features, rowsum, out=np.zeros_like(features), where=rowsum > 0)

    edge_index = _edges_from_adjacency(graph, n)
    train = np.zeros(n, dtype=bool)
    val = np.zeros(n, dtype=bool)
    test = np.zeros(n, dtype=bool)
    train[:len(y)] = True
    val[len(y):len(y) + n_val] = True
    test[test_index] = True
    return GraphData(name=name, x=torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)),
                     edge_index=edge_index, y=torch.from_numpy(labels), train_mask=torch.from_numpy(train),
                     val_mask=torch.from_numpy(val), test_mask=torch.from_numpy(test),
                     num_classes=int(onehot.shape[1]), source=source or f"Planetoid ind.{name}.*")


def _edges_from_adjacency(graph: Mapping, n: int) -> torch.Tensor:
    """int64 (2, E): both directions of every edge in the adjacency lists, unique, no self loops."""
    src, dst = [], []
    for node, neighbours in graph.items():
        for nb in neighbours:
            src.append(int(node))
            dst.append(int(nb))
    e = np.array([src + dst, dst + src], dtype=np.int64)
    e = e[:, (e[0] != e[1]) & (e[0] < n) & (e[1] < n)]
    key = np.unique(e[0] * n + e[1])
    return torch.from_numpy(np.stack([key // n, key % n]))


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def graph_names() -> list[str]:
    """The graph datasets :func:`load_graph` knows."""
    return sorted(PLANETOID_SHA256)


def load_graph(name: str, normalize_features: bool = True,
               checksums: Mapping[str, str] | None = None) -> GraphData:
    """Load a Planetoid graph (``"cora"``, ``"citeseer"``, ``"pubmed"``; case-insensitive).

    ``checksums`` maps each of the eight suffixes to the sha256 of its file; by default the
    pinned :data:`PLANETOID_SHA256` values are used.
    """
    key = name.lower().removeprefix("planetoid:")
    if not key or "/" in key:
        raise ValueError(f"unknown graph dataset {name!r}; give a Planetoid member, e.g. {', '.join(graph_names())}")
    if key not in PLANETOID_SHA256 and checksums is None:
        return _load_unpinned(key, normalize_features)
    sums = dict(checksums) if checksums is not None else PLANETOID_SHA256[key]
    if sums is None:
        raise DataError(
            f"no verified sha256 is known for the Planetoid files of {key!r}, and sparsenb loads no data file "
            f"it cannot verify. To fix: obtain ind.{key}.{{{','.join(PLANETOID_SUFFIXES)}}} from {PLANETOID_URL} "
            f"(or put them in $SPARSENB_DATA_MIRROR/planetoid/), check them, and call "
            f"load_graph({key!r}, checksums={{'x': '<sha256>', ...}}) with the sha256 of all eight files.")
    missing = [s for s in PLANETOID_SUFFIXES if s not in sums]
    if missing:
        raise ValueError(f"checksums for {key!r} lack the suffixes {missing}")
    raw = {}
    for suffix in PLANETOID_SUFFIXES:
        fname = f"ind.{key}.{suffix}"
        raw[suffix] = fetch(f"planetoid/{fname}", PLANETOID_URL + fname, sha256=sums[suffix]).read_bytes()
    return parse_planetoid(key, raw, normalize_features=normalize_features,
                           source=f"Planetoid ind.{key}.* ({PLANETOID_URL}), sha256-verified; standard split"
                                  + ("; features row-normalised" if normalize_features else ""))


def _load_unpinned(key: str, normalize_features: bool) -> GraphData:
    """A Planetoid member whose checksums are not pinned here (``planetoid:<name>``, e.g. a file set in the
    mirror): each file is checked against the mirror's SHA256SUMS when listed there, else fetched as it is
    and its sha256 printed (:func:`sparsenb.data.fetch_any`); the digests go into ``source``."""
    raw, digests = {}, {}
    for suffix in PLANETOID_SUFFIXES:
        fname = f"ind.{key}.{suffix}"
        try:
            path, digests[suffix], _ = fetch_any(f"planetoid/{fname}", PLANETOID_URL + fname)
        except DataError as err:
            raise DataError(f"Planetoid member {key!r}: {err}\nPinned here: {', '.join(graph_names())}") from err
        raw[suffix] = path.read_bytes()
    return parse_planetoid(key, raw, normalize_features=normalize_features,
                           source=f"Planetoid ind.{key}.* ({PLANETOID_URL}), sha256 "
                                  + ", ".join(f"{k}={v}" for k, v in digests.items()) + "; standard split"
                                  + ("; features row-normalised" if normalize_features else ""))


def _register(key: str, description: str) -> None:
    register(key, description)(lambda **kw: load_graph(key, **kw))


_register("cora", "graph (GraphData, see sparsenb.data.graphs): Planetoid Cora, 2708 nodes, 1433 features, "
                  "7 classes, split 140/500/1000")
_register("citeseer", "graph (GraphData): Planetoid Citeseer, 3327 nodes, 6 classes, split 120/500/1000 "
                      "(download or mirror)")
_register("pubmed", "graph (GraphData): Planetoid Pubmed, 19717 nodes, 3 classes, split 60/500/1000 "
                    "(download or mirror)")


@register_family("planetoid", "graph (GraphData): any Planetoid member by name, planetoid:<name> (cora, citeseer "
                              "and pubmed pinned; others checked against the mirror's SHA256SUMS, else sha256 printed)")
def _load_family(member: str, **kwargs) -> GraphData:
    return load_graph(member, **kwargs)
