"""The Turing Change Point Dataset (TCPD): 42 annotated real-world time series.

van den Burg, G.J.J. and Williams, C.K.I. (2020), "An Evaluation of Change Point Detection
Algorithms", arXiv:2003.06222; data and annotations: ``alan-turing-institute/TCPD`` (MIT code,
per-series licences in that repository's READMEs).

A change-point series is not a :class:`sparsenb.data.TensorData` (no labels, no splits), so it
is a :class:`TcpdSeries`. :func:`load_tcpd` loads one by name; the family ``tcpd:<name>`` is
also registered in :mod:`sparsenb.data`, so ``sparsenb.data.available()`` lists it and
``sparsenb.data.load("tcpd:nile")`` returns a :class:`TcpdSeries` too.

Files
    ``tcpd/datasets/<name>/<name>.json`` (the TCPD JSON format: ``n_obs``, ``n_dim``, ``time``,
    ``series[d]["raw"]`` with ``null`` for a missing value) and ``tcpd/annotations.json``
    (``{series: {annotator_id: [0-based change-point indices]}}``, five annotators per series),
    obtained through :func:`sparsenb.data.fetch`: from the cache, the mirror
    ``$SPARSENB_DATA_MIRROR/tcpd/...`` or the TCPD repository's raw files. Every series file is
    checked against the md5 that TCPD itself publishes (its ``checksums.json``, pinned below as
    :data:`TCPD_MD5`); ``annotations.json`` against a pinned sha256.

Which series are here
    TCPD ships 32 of its 42 series as files; the other 10 (:data:`NOT_IN_MIRROR`) are built by
    TCPD's own download scripts from third-party sources, so they are neither in the shared
    mirror nor downloadable from the repository's raw files. Asking for one raises
    :class:`sparsenb.data.DataError` saying so and how to build it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from .registry import DataError, fetch, register_family

__all__ = ["TcpdSeries", "load_tcpd", "load_annotations", "tcpd_names", "TCPD_MD5",
           "NOT_IN_MIRROR", "TCPD_URL"]

TCPD_URL = "https://github.com/alan-turing-institute/TCPD/raw/master/"
ANNOTATIONS_SHA256 = "532bedc29837086a024cf680213afaa832ecdf3d6b1763ae9ad89181fd85227d"

# md5 of every series file, as TCPD's checksums.json publishes them (bee_waggle_6 has two
# accepted versions). The keys are the 42 series of the benchmark.
TCPD_MD5: dict[str, tuple[str, ...]] = {
    "apple": ("22edb48471bd3711f7a6e15de6413643",),
    "bank": ("5207135ea53fc6fa2a8119908da73abf",),
    "bee_waggle_6": ("4f03feafecb3be0b069b3cb0d6b17d4f", "71311783488ee5f1122545d24c15429b"),
    "bitcoin": ("f90ff14ed1fc0c3d47d4394d25cbce93",),
    "brent_spot": ("79892116ef8a0aa16e2450123655b31d",),
    "businv": ("d2ab178da17b2e659a10a102a4b9f332",),
    "centralia": ("addb9b70ac1294eba6da958f3ab26595",),
    "children_per_woman": ("826e0a2328b8a8a085050115768eef98",),
    "co2_canada": ("de8d2cac911d2a8e3ce5addacbaed8e0",),
    "construction": ("fb0347dc9fd353b11b35e99f7d531f13",),
    "debt_ireland": ("a5a9e752c338d2ffcceb614bb2064cc9",),
    "gdp_argentina": ("694212b5682ebd808d740ffd83d4bc16",),
    "gdp_croatia": ("4f902ba68bf710fa245e5eb0ab35fea7",),
    "gdp_iran": ("889e9fc6292125189fd3188396167431",),
    "gdp_japan": ("17026e80ab363d9f668d69900824d9ae",),
    "global_co2": ("7c8edd8887f51a6f841cc9d806ab4e56",),
    "homeruns": ("987bbab63e2c72acba1c07325303720c",),
    "iceland_tourism": ("8bbac4ca95319a865f2d58ff564f063d",),
    "jfk_passengers": ("9655295214078f2a45a4c18e6c4e6d0d",),
    "lga_passengers": ("3e7bf55fac17f59b400f8a558d3f0337",),
    "measles": ("e42afd03be893fc7deb98514c94fa4c7",),
    "nile": ("5b08800e3ec692bfa5385b978658199b",),
    "occupancy": ("bc6cd9adaf496fe30bf0e417d2c3b0c6",),
    "ozone": ("348b1f85c3ec3da3b8989afe04c33b80",),
    "quality_control_1": ("fcfd5b0323a0dbd499c22b32c77f6a43",),
    "quality_control_2": ("919a55440bd00d635db80fe83e921c7d",),
    "quality_control_3": ("94f55ddedd03197bc3e660f6e1d840ee",),
    "quality_control_4": ("1efedb9a52cd0b9a9250cf9781c5f7ef",),
    "quality_control_5": ("2ebb10acafae18ebabf0217218717970",),
    "rail_lines": ("fa7d19c61264f0d6b9d74cd145a50012",),
    "ratner_stock": ("f7086ff916f35b88463bf8fd1857815e",),
    "robocalls": ("f67ec0ccb50f2a835912e5c51932c083",),
    "run_log": ("2c78a8fa0b4a2f8e2d22ba3ad4dfd49f",),
    "scanline_126007": ("057d5741b623308af00c42e2c8e525c3",),
    "scanline_42049": ("39921dfa959576bd0b3d6c95558f17f4",),
    "seatbelts": ("976ef4318e7b6381ff37dd4ac8029718",),
    "shanghai_license": ("b4ac173eb6c0a1a4d10268abc109eda1",),
    "uk_coal_employ": ("a7c72746e46d6e09f516bd87e0e68bef",),
    "unemployment_nl": ("26d8c0359de7f733a6fb51d4d60b5af6",),
    "us_population": ("77037fc5ff0338516a56ae686aa4dcba",),
    "usd_isk": ("5cac2807a0e280c8ffd7321662e339ac",),
    "well_log": ("7c80d2cbd5864b923e6a653aad115de6",),}

# The 10 series that TCPD builds with download scripts (no file in the repository, none in the
# shared mirror): asking for one raises a DataError that says so.
NOT_IN_MIRROR = ("apple", "bee_waggle_6", "bitcoin", "iceland_tourism", "measles", "occupancy",
                 "ratner_stock", "robocalls", "scanline_126007", "scanline_42049")


@dataclass(repr=False)
class TcpdSeries:
    """One TCPD series with its human annotations.

    values: float64 (n_obs, n_dim), the raw values; NaN where TCPD records a missing value.
    annotations: {annotator_id: sorted 0-based change-point indices}; an empty list means
        that annotator saw no change.
    """

    name: str
    longname: str
    values: np.ndarray
    annotations: dict[str, list[int]]
    labels: list[str] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        if self.values.ndim != 2:
            raise ValueError(f"{self.name}: values must be (n_obs, n_dim), got {self.values.shape}")
        for uid, cps in self.annotations.items():
            if any(not 0 <= c < self.n_obs for c in cps):
                raise ValueError(f"{self.name}: annotator {uid} has a change point outside 0..{self.n_obs - 1}")

    @property
    def n_obs(self) -> int:
        return len(self.values)

    @property
    def n_dim(self) -> int:
        return int(self.values.shape[1])

    @property
    def n_missing(self) -> int:
        return int(np.isnan(self.values).sum())

    def __repr__(self) -> str:
        return (f"TcpdSeries(name={self.name!r}, n_obs={self.n_obs}, n_dim={self.n_dim}, "
                f"annotators={len(self.annotations)}, missing={self.n_missing})")


def tcpd_names(in_mirror_only: bool = False) -> list[str]:
    """The 42 TCPD series (sorted); with ``in_mirror_only`` the 32 shipped as files."""
    names = sorted(TCPD_MD5)
    return [n for n in names if n not in NOT_IN_MIRROR] if in_mirror_only else names


def load_annotations() -> dict[str, dict[str, list[int]]]:
    """TCPD's ``annotations.json``: {series: {annotator_id: [0-based indices]}} (sha256-checked)."""
    path = fetch("tcpd/annotations.json", TCPD_URL + "annotations.json", sha256=ANNOTATIONS_SHA256)
    return json.loads(path.read_text())


def _fetch_series(name: str):
    relpath = f"tcpd/datasets/{name}/{name}.json"
    url = f"{TCPD_URL}datasets/{name}/{name}.json"
    errors = []
    for md5 in TCPD_MD5[name]:  # any published version is accepted
        try:
            return fetch(relpath, url, md5=md5)
        except DataError as err:
            errors.append(str(err))
    raise DataError("\n".join(errors))


def load_tcpd(name: str) -> TcpdSeries:
    """Load TCPD series ``name`` (values as float64 (n_obs, n_dim), NaN = missing) and its annotations.

    Raises ValueError for a name that is not one of the 42 series, and DataError for one of
    the 10 series that TCPD does not ship as a file (:data:`NOT_IN_MIRROR`) or for a file that
    cannot be obtained or fails its md5.
    """
    if name not in TCPD_MD5:
        raise ValueError(f"unknown TCPD series {name!r}; the 42 series are: {', '.join(tcpd_names())}")
    try:
        path = _fetch_series(name)
    except DataError as err:
        if name not in NOT_IN_MIRROR:
            raise
        raise DataError(
            f"TCPD series {name!r} is not in the data mirror: TCPD does not ship it as a file but builds "
            f"it from its original source with its download scripts. To use it, build it with the TCPD "
            f"repository ({TCPD_URL.replace('/raw/master/', '')}: `make export`) and put "
            f"datasets/{name}/{name}.json under $SPARSENB_DATA_MIRROR/tcpd/. The 32 series available "
            f"without it: {', '.join(tcpd_names(in_mirror_only=True))}") from err
    raw = json.loads(path.read_text())
    if raw.get("name") != name or len(raw["series"]) != raw["n_dim"]:
        raise DataError(f"{path} is not the TCPD file of {name!r}")
    values = np.array([[np.nan if v is None else float(v) for v in s["raw"]] for s in raw["series"]],
                      dtype=np.float64).T
    if values.shape != (raw["n_obs"], raw["n_dim"]):
        raise DataError(f"{path}: values have shape {values.shape}, header says "
                        f"({raw['n_obs']}, {raw['n_dim']})")
    annotations = {uid: sorted(int(c) for c in cps) for uid, cps in load_annotations()[name].items()}
    return TcpdSeries(name=name, longname=raw.get("longname", name), values=values,
                      annotations=annotations, labels=[s["label"] for s in raw["series"]],
                      source=f"TCPD {name}.json (md5 checked) + annotations.json")


@register_family("tcpd", "Turing Change Point Dataset series (van den Burg & Williams 2020), "
                         "e.g. tcpd:nile; returns a TcpdSeries (values + 5 annotators)")
def _load_tcpd_family(member: str) -> TcpdSeries:
    return load_tcpd(member)
