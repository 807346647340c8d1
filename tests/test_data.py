"""Tests for sparsenb.data: registry, fetch (cache / mirror / URLs), datasets, loaders.

All offline. The mnist5k test uses the local mirror next to the repo when present.
"""

import functools
import hashlib
import http.server
import threading

import numpy as np
import pytest
import torch

from sparsenb import data

UNREACHABLE = "http://127.0.0.1:9/x"  # port 9 (discard) refuses connections at once


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Each test gets its own empty cache and no mirror."""
    monkeypatch.setenv("SPARSENB_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("SPARSENB_DATA_MIRROR", raising=False)
    return tmp_path


def sha256_of(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def make_mirror(tmp_path, relpath="fake/hello.bin", content=b"hello sparsenb\n"):
    mirror = tmp_path / "mirror"
    (mirror / relpath).parent.mkdir(parents=True)
    (mirror / relpath).write_bytes(content)
    return mirror


# --------------------------------------------------------------------------- registry


def test_available_lists_builtin_datasets():
    names = data.available()
    for name in ("digits", "mnist1d", "mnist5k", "mnist"):
        assert name in names and isinstance(names[name], str) and names[name]


def test_unknown_name_lists_available():
    with pytest.raises(ValueError) as e:
        data.load("no-such-dataset")
    msg = str(e.value)
    assert "no-such-dataset" in msg
    for name in data.available():
        assert name in msg


def test_register_duplicate_rejected():
    with pytest.raises(ValueError):
        data.register("digits", "again")(lambda: None)


def test_register_and_load_custom(monkeypatch):
    monkeypatch.setattr(data, "_REGISTRY", dict(data._REGISTRY))

    @data.register("tiny", "two points")
    def tiny(n=2):
        X = torch.zeros(n, 3)
        y = torch.zeros(n, dtype=torch.int64)
        return data.TensorData("tiny", X, y, X, y, 1, (3,), "test")

    assert data.available()["tiny"] == "two points"
    assert len(data.load("tiny", n=5).y_train) == 5


def test_tensordata_validates():
    X, y = torch.zeros(4, 3), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(TypeError):
        data.TensorData("bad", X.double(), y, X, y, 1, (3,), "t")
    with pytest.raises(ValueError):
        data.TensorData("bad", X, y[:3], X, y, 1, (3,), "t")
    with pytest.raises(ValueError):
        data.TensorData("bad", X, y, X, y, 1, (4,), "t")


# --------------------------------------------------------------------------- data_dir


def test_data_dir_from_env(tmp_path, monkeypatch):
    target = tmp_path / "a" / "b"
    monkeypatch.setenv("SPARSENB_DATA_DIR", str(target))
    assert data.data_dir() == target and target.is_dir()


# --------------------------------------------------------------------------- fetch


def test_fetch_needs_exactly_one_checksum():
    with pytest.raises(ValueError):
        data.fetch("x", UNREACHABLE)
    with pytest.raises(ValueError):
        data.fetch("x", UNREACHABLE, sha256="0" * 64, md5="0" * 32)


def test_fetch_from_mirror_then_cache(tmp_path, monkeypatch):
    content = b"hello sparsenb\n"
    mirror = make_mirror(tmp_path, content=content)
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(mirror))

    path = data.fetch("fake/hello.bin", UNREACHABLE, sha256=sha256_of(content))
    assert path == data.data_dir() / "fake" / "hello.bin"
    assert path.read_bytes() == content
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]

    # second call is served from the cache: the mirror is gone
    (mirror / "fake" / "hello.bin").unlink()
    monkeypatch.delenv("SPARSENB_DATA_MIRROR")
    assert data.fetch("fake/hello.bin", UNREACHABLE, sha256=sha256_of(content)) == path


def test_fetch_md5(tmp_path, monkeypatch):
    content = b"md5 please"
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(make_mirror(tmp_path, content=content)))
    path = data.fetch("fake/hello.bin", [UNREACHABLE], md5=hashlib.md5(content).hexdigest())
    assert path.read_bytes() == content


def test_fetch_bad_checksum_in_mirror(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(make_mirror(tmp_path)))
    wrong = "ab" * 32
    with pytest.raises(data.DataError) as e:
        data.fetch("fake/hello.bin", UNREACHABLE, sha256=wrong)
    msg = str(e.value)
    assert wrong in msg and sha256_of(b"hello sparsenb\n") in msg
    assert not (data.data_dir() / "fake" / "hello.bin").exists()
    assert not list((data.data_dir() / "fake").iterdir())  # no temp files left behind


def test_fetch_missing_everywhere(tmp_path, monkeypatch):
    mirror = tmp_path / "empty-mirror"
    mirror.mkdir()
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(mirror))
    with pytest.raises(data.DataError) as e:
        data.fetch("fake/nothere.bin", [UNREACHABLE, UNREACHABLE + "2"], sha256="0" * 64)
    msg = str(e.value)
    assert isinstance(e.value, RuntimeError)
    assert "fake/nothere.bin" in msg
    assert str(mirror.resolve() / "fake" / "nothere.bin") in msg
    assert UNREACHABLE in msg and UNREACHABLE + "2" in msg
    assert str(data.data_dir() / "fake" / "nothere.bin") in msg
    assert "SPARSENB_DATA_MIRROR" in msg


def test_fetch_missing_without_mirror():
    with pytest.raises(data.DataError) as e:
        data.fetch("fake/nothere.bin", UNREACHABLE, sha256="0" * 64)
    assert "SPARSENB_DATA_MIRROR not set" in str(e.value)


def test_fetch_replaces_corrupted_cache(tmp_path, monkeypatch):
    content = b"hello sparsenb\n"
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(make_mirror(tmp_path, content=content)))
    cached = data.data_dir() / "fake" / "hello.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"corrupted")
    with pytest.warns(UserWarning, match="bad sha256"):
        path = data.fetch("fake/hello.bin", UNREACHABLE, sha256=sha256_of(content))
    assert path == cached and cached.read_bytes() == content


@pytest.fixture
def http_server(tmp_path):
    """A local HTTP server serving tmp_path/www; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_downloads_with_url_fallback(http_server):
    root, base = http_server
    content = bytes(range(256)) * 100
    (root / "file.bin").write_bytes(content)
    path = data.fetch("dl/file.bin", [UNREACHABLE, f"{base}/file.bin"], sha256=sha256_of(content))
    assert path.read_bytes() == content


def test_fetch_download_bad_checksum(http_server):
    root, base = http_server
    (root / "file.bin").write_bytes(b"abc")
    with pytest.raises(data.DataError) as e:
        data.fetch("dl/file.bin", f"{base}/file.bin", sha256="0" * 64)
    assert "0" * 64 in str(e.value) and sha256_of(b"abc") in str(e.value)
    assert not (data.data_dir() / "dl" / "file.bin").exists()


# --------------------------------------------------------------------------- datasets


def test_digits():
    d = data.load("digits")
    assert d.X_train.shape == (1347, 1, 8, 8) and d.X_test.shape == (450, 1, 8, 8)
    assert d.X_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.input_shape == (1, 8, 8) and d.num_classes == 10
    assert 0.0 <= d.X_train.min() and d.X_train.max() <= 1.0
    assert torch.bincount(d.y_train).tolist() and len(torch.unique(d.y_test)) == 10
    # stratified: class proportions agree between splits
    p_tr = torch.bincount(d.y_train, minlength=10) / len(d.y_train)
    p_te = torch.bincount(d.y_test, minlength=10) / len(d.y_test)
    assert (p_tr - p_te).abs().max() < 0.01
    d2 = data.load("digits")
    assert torch.equal(d.X_train, d2.X_train) and torch.equal(d.y_test, d2.y_test)


def test_mnist1d_shapes_cache_and_determinism():
    state = np.random.get_state()
    d = data.load("mnist1d")
    assert np.array_equal(np.random.get_state()[1], state[1])  # global RNG untouched
    assert d.X_train.shape == (4000, 1, 40) and d.X_test.shape == (1000, 1, 40)
    assert d.X_train.dtype == torch.float32 and d.y_test.dtype == torch.int64
    assert d.input_shape == (1, 40) and d.num_classes == 10
    assert torch.unique(d.y_train).tolist() == list(range(10))
    cache = data.data_dir() / "mnist1d" / "mnist1d_default.npz"
    assert cache.exists()
    d2 = data.load("mnist1d")  # from the cache
    assert torch.equal(d.X_train, d2.X_train) and torch.equal(d.y_train, d2.y_train)
    assert torch.equal(d.X_test, d2.X_test) and torch.equal(d.y_test, d2.y_test)
    # a broken cache is rebuilt
    cache.write_bytes(b"not an npz")
    with pytest.warns(UserWarning):
        d3 = data.load("mnist1d")
    assert torch.equal(d.X_train, d3.X_train)


def test_mnist_idx_parser(tmp_path):
    import gzip

    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + np.array([2, 3, 4], dtype=">u4").tobytes()
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(header + arr.tobytes())
    assert np.array_equal(data._read_idx(path), arr)


def test_full_mnist_offline_error(monkeypatch):
    monkeypatch.setattr(data, "MNIST_URLS", ["http://127.0.0.1:9/"])
    with pytest.raises(data.DataError) as e:
        data.load("mnist")
    assert "train-images-idx3-ubyte.gz" in str(e.value)


@pytest.mark.requires_data("mnist5k")
def test_mnist5k_from_mirror(monkeypatch, data_mirror):
    monkeypatch.setenv("SPARSENB_DATA_MIRROR", str(data_mirror))
    d = data.load("mnist5k")
    assert d.X_train.shape == (5000, 1, 28, 28) and d.X_test.shape == (10000, 1, 28, 28)
    assert d.input_shape == (1, 28, 28) and d.num_classes == 10
    assert d.X_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert torch.bincount(d.y_train).tolist() == [500] * 10
    assert torch.unique(d.y_test).tolist() == list(range(10))
    assert abs(d.X_train.mean().item()) < 0.1 and abs(d.X_train.std().item() - 1) < 0.1
    assert abs(d.X_test.mean().item()) < 0.1
    # no train image appears in the test set
    test_images = {x.numpy().tobytes() for x in d.X_test}
    assert not any(x.numpy().tobytes() in test_images for x in d.X_train)
    # files were copied into the cache
    assert (data.data_dir() / "mnist" / "t10k-images-idx3-ubyte.gz").exists()


# --------------------------------------------------------------------------- subset / loaders


def test_subset_deterministic():
    d = data.load("digits")
    a, b = d.subset(100, 50, seed=1), d.subset(100, 50, seed=1)
    assert a.X_train.shape == (100, 1, 8, 8) and a.X_test.shape == (50, 1, 8, 8)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.y_train, d.subset(100, 50, seed=2).y_train)
    full = d.subset(n_train=10)
    assert len(full.y_test) == len(d.y_test)
    with pytest.raises(ValueError):
        d.subset(n_train=10**6)


def test_loaders_shapes_and_reproducible_shuffle():
    d = data.load("digits")
    train, test = d.loaders(batch_size=64, seed=3, test_batch_size=100)
    X, y = next(iter(train))
    assert X.shape == (64, 1, 8, 8) and y.shape == (64,) and X.dtype == torch.float32
    assert [len(b[1]) for b in test] == [100] * 4 + [50]
    assert torch.equal(torch.cat([b[1] for b in test]), d.y_test)  # test loader keeps order

    def order(loader):
        return torch.cat([b[1] for b in loader])

    train, _ = d.loaders(batch_size=64, seed=3)
    same, _ = d.loaders(batch_size=64, seed=3)
    other, _ = d.loaders(batch_size=64, seed=4)
    first = order(train)
    assert torch.equal(first, order(same))
    assert not torch.equal(first, order(other))
    assert sorted(first.tolist()) == sorted(d.y_train.tolist())

    # the generator state can be checkpointed and restored
    assert isinstance(train.generator, torch.Generator)
    state = train.generator.get_state()
    epoch2 = order(train)
    train.generator.set_state(state)
    assert torch.equal(order(train), epoch2)


def test_family_loads_any_member_and_unknown_names_list_families():
    from sparsenb import data as d

    @d.register_family("toyfam", "toy family for the test")
    def _toy(member: str) -> d.TensorData:
        X = torch.zeros(4, 3)
        y = torch.tensor([0, 1, 0, 1])
        return d.TensorData(f"toyfam:{member}", X, y, X, y, 2, (3,), "test")

    try:
        assert d.load("toyfam:abc").name == "toyfam:abc"
        assert "toyfam:*" in d.available()
        with pytest.raises(ValueError, match="toyfam:\\*"):
            d.load("nosuchset")
    finally:
        d._FAMILIES.pop("toyfam")
