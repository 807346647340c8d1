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


# ----------------------------------------------------------------- per-step schedule, on_step, batch_fn, evaluate_fn
def _dense(epochs, **kw):
    snb.set_seed(0)
    model = snb.models.MLP(20, (16,), 3)
    opt = snb.make_optimizer(model, "sgd", lr=0.05, momentum=0.9)
    return model, opt


def test_per_step_scheduler_steps_once_per_optimizer_step_and_sets_exact_lr():
    from sparsenb.train.trainer import FunctionLR
    train, _ = _loaders()
    model, opt = _dense(2)
    calls = []

    def lr_at(t):
        calls.append(t)
        return 0.05 / (1 + t) ** 0.5

    sched = FunctionLR(opt, lr_at)
    t = snb.Trainer(model, None, opt, epochs=2, scheduler=sched, scheduler_step="step", device="cpu", progress=False)
    hist = t.fit(train)
    spe = len(train)
    assert calls == list(range(2 * spe + 1))  # the initial value, then one per optimizer step
    assert opt.param_groups[0]["lr"] == lr_at(2 * spe)  # exact, not base_lr * factor
    assert [h["lr"] for h in hist] == [lr_at(0), lr_at(spe)]  # each epoch's first step


def test_epoch_scheduler_is_stepped_once_per_epoch():
    train, _ = _loaders()
    model, opt = _dense(3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    t = snb.Trainer(model, None, opt, epochs=3, scheduler=sched, device="cpu", progress=False)
    hist = t.fit(train)
    assert [h["lr"] for h in hist] == [0.05, 0.025, 0.0125]


def test_scheduler_step_is_checked():
    import pytest
    model, opt = _dense(1)
    with pytest.raises(ValueError, match="scheduler_step"):
        snb.Trainer(model, None, opt, epochs=1, scheduler_step="batch", device="cpu")


def test_on_step_sees_every_step_number_in_order():
    train, _ = _loaders()
    model, opt = _dense(2)
    seen = []
    t = snb.Trainer(model, None, opt, epochs=2, device="cpu", progress=False,
                    on_step=lambda tr, step: seen.append((step, tr.step, tr.epoch)))
    t.fit(train)
    spe = len(train)
    assert [s for s, _, _ in seen] == list(range(2 * spe))
    assert all(done == s + 1 for s, done, _ in seen)
    assert [e for _, _, e in seen] == [0] * spe + [1] * spe


def test_batch_fn_and_evaluate_fn_replace_the_defaults():
    X, y = _data()
    model, opt = _dense(2)
    target = torch.nn.functional.one_hot(y, 3).float()
    calls = {"batch": 0, "eval": []}

    def mse_batch(tr, batch):  # a full-batch regression: the batch is an index, the data sit in the closure
        calls["batch"] += 1
        out = tr.model(X)
        return torch.nn.functional.mse_loss(out, target), None, len(y)

    def evaluate_fn(tr, loader):
        calls["eval"].append(loader)
        with torch.no_grad():
            return {"mse": float(torch.nn.functional.mse_loss(tr.model(X), target)), "epoch0": tr.epoch}

    t = snb.Trainer(model, None, opt, epochs=2, device="cpu", progress=False, batch_fn=mse_batch,
                    evaluate_fn=evaluate_fn)
    hist = t.fit([0, 1, 2])
    assert calls["batch"] == 6 and calls["eval"] == [None, None]
    assert [h["epoch0"] for h in hist] == [0, 1]
    assert "test_acc" not in hist[0] and hist[1]["mse"] < hist[0]["mse"]
    assert all(h["train_acc"] != h["train_acc"] for h in hist)  # nan: the batch_fn counted nothing
    assert hist[1]["train_loss"] < hist[0]["train_loss"]


import pytest


@pytest.mark.parametrize("batch_bar", [False, True])
def test_default_trainer_matches_a_plain_loop_bit_for_bit(batch_bar):
    from tqdm.auto import tqdm
    train, test = _loaders()
    model, opt = _dense(2)
    t = snb.Trainer(model, None, opt, epochs=2, device="cpu", progress=False, batch_bar=batch_bar)
    t.fit(train)
    train, _ = _loaders()
    plain, opt2 = _dense(2)
    for _ in range(2):
        # tqdm.auto opens a throwaway iterator of the loader (one draw from its generator): the default
        # Trainer iterates that way, batch_bar=False as a bare loop
        for x, y in (tqdm(train, disable=True) if batch_bar else train):
            opt2.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(plain(x), y).backward()
            opt2.step()
    for a, b in zip(model.parameters(), plain.parameters()):
        assert torch.equal(a, b)


def test_resume_with_per_step_schedule_and_on_step_is_bit_identical(tmp_path):
    from sparsenb.train.trainer import FunctionLR

    def run(ckpt=None, stop_after=None):
        train, test = _loaders()
        snb.set_seed(0)
        model = snb.models.MLP(20, (32,), 3)
        model.add_module("drop", torch.nn.Dropout(0.1))
        method = snb.methods.get("rigl", sparsity=0.8, seed=0, update_every=3)
        opt = snb.make_optimizer(model, "sgd", lr=0.05, momentum=0.9)
        sched = FunctionLR(opt, lambda s: 0.05 * 0.99 ** s)
        steps = []

        def stop(tr, row):
            if row["epoch"] == stop_after:
                raise KeyboardInterrupt

        t = snb.Trainer(model, method, opt, epochs=4, scheduler=sched, scheduler_step="step", device="cpu",
                        progress=False, checkpoint=ckpt, callbacks=[stop], on_step=lambda tr, s: steps.append(s))
        try:
            t.fit(train, test)
        except KeyboardInterrupt:
            pass
        return t, steps

    full, steps_full = run()
    ckpt = tmp_path / "c.pt"
    _, first = run(ckpt, stop_after=2)
    resumed, second = run(ckpt)
    spe = len(_loaders()[0])
    # the callback stops epoch 2 before its checkpoint: the run resumes after epoch 1
    assert first == steps_full[:2 * spe] and second == steps_full[spe:]
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert [h["train_loss"] for h in full.history] == [h["train_loss"] for h in resumed.history]
    assert full.optimizer.param_groups[0]["lr"] == resumed.optimizer.param_groups[0]["lr"]


def test_evaluate_helper_counts_exactly_and_restores_the_mode():
    from sparsenb.train.trainer import evaluate
    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    y = torch.tensor([0, 1, 1])
    model.train()
    ev = evaluate(model, zip(X.split(2), y.split(2)))
    assert ev["acc"] == 2 / 3 and ev["n"] == 3 and model.training
    expected = torch.nn.functional.cross_entropy(X, y).item()
    assert abs(ev["loss"] - expected) < 1e-6
