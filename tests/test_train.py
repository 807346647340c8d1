"""The Trainer: exact sparsity during training, history, and bit-identical resume."""
import torch
from torch.utils.data import DataLoader, TensorDataset

import sparsenb as snb


def _data(n=256, d=20, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 1).long()
    return X, y


def _loaders(seed=0):
    X, y = _data()
    train = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    test = DataLoader(TensorDataset(*_data(seed=1)), batch_size=128)
    return train, test


def _trainer(method_name, epochs, checkpoint=None, **kw):
    snb.set_seed(0)
    model = snb.models.MLP(20, (32, 32), 3)
    model.add_module("drop", torch.nn.Dropout(0.1))  # consumes the global RNG: resume must restore it
    opts = {} if method_name == "dense" else dict(sparsity=0.8, seed=0)
    if method_name == "rigl":
        opts.update(update_every=3)
    method = snb.methods.get(method_name, **opts)
    opt = snb.make_optimizer(model, "sgd", lr=0.05, momentum=0.9, weight_decay=1e-4)
    sched = snb.make_scheduler(opt, "cosine", epochs)
    return snb.Trainer(model, method, opt, epochs=epochs, scheduler=sched, device="cpu",
                       checkpoint=checkpoint, progress=False, **kw)


def test_pick_device_auto_is_cpu_here_and_explicit_is_respected():
    assert snb.pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert snb.pick_device("auto").type == "cuda"
    else:
        assert snb.pick_device("auto").type in ("cpu", "mps")


def test_training_keeps_exact_sparsity_and_records_history():
    train, test = _loaders()
    t = _trainer("rigl", epochs=3)
    nnz0 = {n: r["nnz"] for n, r in t.masks.report().items()}
    hist = t.fit(train, test)
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert hist[-1]["step"] == 3 * len(train)
    assert {n: r["nnz"] for n, r in t.masks.report().items()} == nnz0
    for mp in t.masks:
        assert torch.all(mp.param[~mp.mask] == 0)
    assert len(t.method.events) > 0, "RigL never changed the mask"
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert set(hist[0]) >= {"train_loss", "train_acc", "test_loss", "test_acc", "density", "lr", "seconds"}


def _state(t):
    return {k: v.clone() for k, v in t.model.state_dict().items()}


def test_resume_is_bit_identical(tmp_path):
    for method in ("set", "rigl"):
        train, test = _loaders()
        full = _trainer(method, epochs=4)
        full.fit(train, test)

        ckpt = tmp_path / f"{method}.pt"
        train, test = _loaders()
        first = _trainer(method, epochs=4, checkpoint=ckpt, checkpoint_every=1)
        # interrupt after 2 epochs: train a 4-epoch schedule but stop by raising in a callback
        class Stop(Exception):
            pass

        def stop_after_two(trainer, row):
            if row["epoch"] == 2:
                raise Stop
        first.callbacks.append(stop_after_two)
        try:
            first.fit(train, test)
        except Stop:
            pass
        # the epoch-2 checkpoint is written after the callbacks, so write it as the Trainer would
        first.save_checkpoint(ckpt, train, epoch=2)

        # a fresh process: new model/optimizer/loaders, different global RNG state
        torch.manual_seed(12345)
        train, test = _loaders()
        resumed = _trainer(method, epochs=4, checkpoint=ckpt)
        torch.manual_seed(999)  # must not matter: the checkpoint restores every RNG
        resumed.fit(train, test)

        a, b = _state(full), _state(resumed)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{method}: {k} differs after resume"
        assert [h["train_loss"] for h in full.history] == [h["train_loss"] for h in resumed.history]


def test_checkpoint_is_atomic_and_carries_masks(tmp_path):
    train, test = _loaders()
    t = _trainer("set", epochs=2, checkpoint=tmp_path / "c.pt")
    t.fit(train, test)
    state = torch.load(tmp_path / "c.pt", weights_only=True)  # sparsenb checkpoints are plain data
    assert not list(tmp_path.glob("*.tmp"))
    masks = {k: v for k, v in state["model"].items() if k.endswith("_mask")}
    assert masks and all(v.dtype == torch.bool for v in masks.values())
    assert state["epoch"] == 2 and state["method"]["events"]


def test_dense_trainer_has_no_masks():
    train, test = _loaders()
    t = _trainer("dense", epochs=1)
    assert t.masks is None
    hist = t.fit(train, test)
    assert hist[0]["density"] == 1.0


def test_epochs_must_be_positive():
    import pytest
    with pytest.raises(ValueError, match="epochs"):
        _trainer("static", epochs=0)


def test_resume_with_augmentation_is_bit_identical(tmp_path):
    from sparsenb.train.augment import RandomCropFlip

    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 1, 8, 8, generator=g)
    y = (X[:, 0, :4].mean((1, 2)) > 0).long()

    def make(checkpoint=None):
        snb.set_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(144, 2))
        opt = snb.make_optimizer(model, "sgd", lr=0.05)
        loader = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True,
                            generator=torch.Generator().manual_seed(0))
        t = snb.Trainer(model, snb.methods.get("set", sparsity=0.5, seed=0), opt, epochs=3, device="cpu",
                        checkpoint=checkpoint, progress=False, augment=RandomCropFlip(padding=2, seed=0))
        return t, loader

    full, loader = make()
    full.fit(loader)

    ckpt = tmp_path / "aug.pt"
    part, loader = make(ckpt)

    class Stop(Exception):
        pass

    def stop(trainer, row):  # interrupt after epoch 1 (its checkpoint is written after callbacks)
        trainer.save_checkpoint(ckpt, loader, epoch=1)
        raise Stop
    part.callbacks.append(stop)
    try:
        part.fit(loader)
    except Stop:
        pass
    resumed, loader = make(ckpt)
    resumed.augment.generator.manual_seed(123)  # must be restored from the checkpoint
    resumed.fit(loader)
    for k, v in _state(full).items():
        assert torch.equal(v, _state(resumed)[k]), f"{k} differs after resume with augmentation"


class _Payload:
    """Unpickling this runs ``os.system``-like code: here it only creates a file, to prove it ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_checkpoint_is_rejected_without_running_its_code(tmp_path):
    marker = tmp_path / "code_ran"
    t = _trainer("set", epochs=2, checkpoint=tmp_path / "c.pt")
    torch.save({"model": {}, "payload": _Payload(marker)}, tmp_path / "c.pt")
    import pytest
    with pytest.raises(ValueError, match="not loaded, to keep its code from running"):
        t.load_checkpoint(tmp_path / "c.pt")
    assert not marker.exists(), "unpickling the checkpoint ran its payload"
