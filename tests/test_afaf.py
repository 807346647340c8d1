"""AFAF (sparse subnetworks for continual learning), EWC, class splits and continual metrics."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsenb.data import TensorData, split_classes
from sparsenb.methods.afaf import AFAF, AFAFConfig, allocation_counts, top_activated
from sparsenb.methods.ewc import EWC, diagonal_fisher
from sparsenb.models.continual import ContinualCNN
from sparsenb.train.metrics import average_accuracy, continual_accuracy, forgetting


def _tiny_tasks(n_tasks=3, per_class=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for t in range(n_tasks):
        cls = [2 * t, 2 * t + 1]
        X = torch.randn(2 * per_class, 1, 12, 12, generator=g)
        y = torch.tensor([cls[0]] * per_class + [cls[1]] * per_class)
        X[y == cls[1]] += 0.5  # something to learn
        tasks.append((cls, X, y))
    return tasks


def _train(model, afaf, X, y, steps=6, lr=0.1):
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(X), y).backward()
        afaf.mask_gradients()
        afaf.before_step()
        opt.step()
        afaf.after_step()


def _model(seed=0):
    torch.manual_seed(seed)
    return ContinualCNN(in_channels=1, num_classes=6, image_size=12, width=0.25)


def test_model_shapes_and_hidden():
    m = ContinualCNN(in_channels=3, num_classes=10, image_size=32, width=1.0)
    assert m.neuron_counts == [3, 64, 128, 256, 2048, 2048, 10]
    assert m.fc1.in_features == 256 * 6 * 6  # the official 6x6 after conv3 and two poolings
    logits, hidden = m.forward_hidden(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, 10) and [h.shape[1] for h in hidden] == [64, 128, 256, 2048, 2048]
    assert ContinualCNN(1, 10, 28, 0.25).neuron_counts == [1, 16, 32, 64, 512, 512, 10]


def test_allocation_fractions_official_counts():
    # the official counts for the paper's CNN: int(0.7 * 64) = 44, ..., int(0.2 * 2048) = 409, int(0.1 * 2048) = 204
    assert allocation_counts([3, 64, 128, 256, 2048, 2048, 10], (0.7, 0.7, 0.7, 0.2, 0.1), 2) == [3, 44, 89, 179, 409, 204, 2]
    with pytest.raises(ValueError):
        allocation_counts([3, 64, 10], (0.7, 0.7), 2)


def test_first_task_allocation_matches_fractions_and_density():
    model = _model()
    afaf = AFAF(model, [[0, 1], [2, 3]], AFAFConfig(), seed=0)
    summary = afaf.begin_task(0)
    counts = afaf.counts
    # new connections of weight layer k = int(density_k * a_k * a_{k+1}) (pairs: kernels / spatial blocks)
    expected = [int(d * counts[k] * counts[k + 1]) for k, d in enumerate(afaf.cfg.density)]
    assert summary["new_connections"] == expected
    # senders of layer l are at most a_l neurons, all free; the classifier only writes the task's classes
    for k in range(1, 6):
        senders = (afaf.mask[k].flatten(2).any(-1) if afaf.mask[k].dim() == 4 else afaf.mask[k]).float()
        if k == 3:
            senders = afaf.mask[3].reshape(afaf.mask[3].shape[0], model.neuron_counts[3], -1).any(-1).float()
        assert int((senders.sum(0) > 0).sum()) <= counts[k]
    rows = afaf.mask[5].any(1)
    assert rows.nonzero().flatten().tolist() == [0, 1]
    # every weight outside the task's connections is exactly zero
    for m, mask in zip(model.weight_layers, afaf.mask):
        assert torch.all(m.weight[~mask] == 0) and torch.all(m.weight[mask] != 0)


def test_frozen_neurons_bit_identical_across_later_tasks():
    model = _model()
    tasks = _tiny_tasks()
    afaf = AFAF(model, [c for c, _, _ in tasks], AFAFConfig(reuse_from=1), seed=0)
    snapshots = []
    for t, (cls, X, y) in enumerate(tasks):
        afaf.begin_task(t, X, y)
        _train(model, afaf, X, y)
        afaf.end_task()
        frozen = [f.clone() for f in afaf.frozen]
        rows = {k: (model.weight_layers[k].weight.detach()[frozen[k + 1]].clone(),
                    model.weight_layers[k].bias.detach()[frozen[k + 1]].clone()) for k in range(6)}
        old = [(m.weight.detach()[o].clone()) for m, o in zip(model.weight_layers, afaf.old)]
        snapshots.append((frozen, rows, [o.clone() for o in afaf.old], old))
    assert sum(int(f.sum()) for f in snapshots[0][0][1:-1]) > 0, "nothing was frozen after task 0"
    changed_somewhere = False
    for t in range(len(tasks) - 1):
        frozen, rows, old_masks, old_values = snapshots[t]
        for k in range(6):
            w, b = rows[k]
            # incoming weights (all of them, existing or zero) and biases of every frozen neuron: unchanged, bit for bit
            assert torch.equal(model.weight_layers[k].weight.detach()[frozen[k + 1]], w)
            assert torch.equal(model.weight_layers[k].bias.detach()[frozen[k + 1]], b)
            # every connection of the tasks up to t keeps its value
            assert torch.equal(model.weight_layers[k].weight.detach()[old_masks[k]], old_values[k])
        # later tasks did train something (so the check could fail)
        changed_somewhere |= any(not torch.equal(a, b) for a, b in zip(old_masks, afaf.old))
    assert changed_somewhere
    # the freeze count follows the fractions: int(freeze_l * a_l) per task (capped by the neurons the task used)
    first = afaf.history[0]["frozen_now"]
    assert first[-1] == min(int(1.0 * afaf.counts[5]), afaf.history[0]["senders_used"][5])
    assert first[3] <= int(0.3 * afaf.counts[4])


def test_reuse_picks_most_activated_neurons_and_connects_only_free_receivers():
    model = _model()
    tasks = _tiny_tasks()
    afaf = AFAF(model, [c for c, _, _ in tasks], AFAFConfig(reuse_from=1), seed=1)
    cls, X, y = tasks[0]
    afaf.begin_task(0, X, y)
    _train(model, afaf, X, y)
    afaf.end_task()
    cls, X, y = tasks[1]
    acts = afaf.class_activations(X, y)
    summary = afaf.begin_task(1, X, y)
    assert summary["reuse"]
    for c in cls:
        for l, cand in summary["candidates"][str(c)].items():
            l = int(l)
            k = int(afaf.cfg.reuse_fraction * afaf.counts[l])
            assert len(cand) == k
            a = acts[c][l - 1]
            # the candidates are the k largest mean activations of class c on the previous model
            assert sorted(a[cand].tolist(), reverse=True) == sorted(a.tolist(), reverse=True)[:k]
    # weight layers below l_reuse get nothing; no new connection ends in a frozen neuron
    assert summary["new_connections"][:afaf.cfg.l_reuse] == [0] * afaf.cfg.l_reuse
    for k in range(6):
        into = afaf.mask[k].reshape(afaf.mask[k].shape[0], -1).any(1)
        assert not torch.any(into & afaf.frozen[k + 1])


def test_top_activated():
    assert top_activated(torch.tensor([0.1, 3.0, 2.0, -1.0]), 2).tolist() == [1, 2]
    assert top_activated(torch.tensor([1.0, 2.0]), 5).tolist() == [1, 0]


def test_static_baseline_freezes_nothing_but_keeps_old_connections():
    model = _model()
    tasks = _tiny_tasks(2)
    afaf = AFAF(model, [c for c, _, _ in tasks], AFAFConfig(reuse=False, freeze_by="none"), seed=0)
    cls, X, y = tasks[0]
    afaf.begin_task(0, X, y)
    _train(model, afaf, X, y)
    afaf.end_task()
    assert all(int(f.sum()) == 0 for f in afaf.frozen[1:-1])
    before = [m.weight.detach()[o].clone() for m, o in zip(model.weight_layers, afaf.old)]
    cls, X, y = tasks[1]
    afaf.begin_task(1, X, y)
    _train(model, afaf, X, y)
    afaf.end_task()
    for m, o, b in zip(model.weight_layers, [o & ~afaf.mask[k] for k, o in enumerate(afaf.old)], before):
        assert torch.equal(m.weight.detach()[o], b)


def test_ewc_penalty_hand_case():
    model = nn.Linear(2, 1, bias=False)
    ewc = EWC(model, lam=4.0)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0]]))
    fisher = {"weight": torch.tensor([[0.5, 2.0]])}
    anchor = {"weight": torch.tensor([[0.0, 0.0]])}
    ewc.tasks.append((fisher, anchor))
    # lam/2 * (0.5 * 1^2 + 2.0 * (-2)^2) = 2 * 8.5 = 17
    assert ewc.penalty().item() == pytest.approx(17.0)
    ewc.penalty().backward()  # gradient lam * F * (theta - theta*) = 4 * [0.5, -4] = [2, -16]
    assert model.weight.grad.flatten().tolist() == pytest.approx([2.0, -16.0])


def test_diagonal_fisher_hand_case():
    # zero weights, 2 classes: p = (0.5, 0.5); d log p_y / d W[c] = (onehot_y - p)_c * x -> (+-0.5 x)^2
    model = nn.Linear(1, 2, bias=False)
    nn.init.zeros_(model.weight)
    X = torch.tensor([[1.0], [2.0]])
    y = torch.tensor([0, 1])
    f = diagonal_fisher(model, X, y)["weight"]
    assert f.flatten().tolist() == pytest.approx([(0.25 * 1 + 0.25 * 4) / 2] * 2)


def test_split_classes_relabels_and_subsamples():
    X = torch.randn(40, 1, 2, 2)
    y = torch.arange(40) % 4
    data = TensorData("toy", X, y, X.clone(), y.clone(), 4, (1, 2, 2), "test")
    tasks = split_classes(data, 2, order=[3, 1, 0, 2], train_per_class=5)
    assert [t.original for t in tasks] == [[3, 1], [0, 2]] and [t.classes for t in tasks] == [[0, 1], [2, 3]]
    assert len(tasks[0].y_train) == 10 and len(tasks[0].y_test) == 20
    # an example of source class 3 is relabelled 0 and keeps its pixels
    i = int((tasks[0].y_test == 0).nonzero()[0])
    assert (tasks[0].X_test[i] == X[y == 3]).all(dim=(1, 2, 3)).any()
    with pytest.raises(ValueError):
        split_classes(data, 3)


def test_continual_metrics():
    logits = torch.tensor([[0.0, 1.0, 5.0, 0.0], [2.0, 1.0, 0.0, 0.0]])
    y = torch.tensor([1, 0])
    cil, til = continual_accuracy(logits, y, [0, 1])
    assert cil == 0.5 and til == 1.0  # the first example is right only within its task
    acc = [[0.9, None, None], [0.6, 0.8, None], [0.3, 0.5, 0.7]]
    assert average_accuracy(acc) == pytest.approx(0.5)
    assert average_accuracy(acc, 1) == pytest.approx(0.7)
    assert forgetting(acc) == pytest.approx(((0.9 - 0.3) + (0.8 - 0.5)) / 2)
    assert forgetting(acc, 0) == 0.0
    assert math.isclose(forgetting(acc, 1), 0.3)


@pytest.mark.parametrize("name", ["mnist1d", "digits"])
def test_a_dataset_the_cnn_cannot_take_is_refused_before_training(name):
    from types import SimpleNamespace

    from sparsenb.experiments.afaf import make_tasks

    cfg = SimpleNamespace(DATASET=name, CLASSES_PER_TASK=2, CLASS_ORDER=None, TRAIN_PER_CLASS=10, TEST_PER_CLASS=5)
    with pytest.raises(ValueError, match="square images"):
        make_tasks(cfg)
