import pytest
import torch

from sparsenb.train.metrics import border_share


def test_border_share_hand_cases():
    # 6x6 image, width 1: the inner 4x4 block holds 16 of 36 pixels
    assert border_share([1.0] * 36, (6, 6), width=1) == pytest.approx(20 / 36)
    centre = torch.zeros(6, 6)
    centre[2:4, 2:4] = 3
    assert border_share(centre.flatten().tolist(), (6, 6), width=1) == 0.0
    edge = torch.zeros(6, 6)
    edge[0, :] = 1
    assert border_share(edge.flatten().tolist(), (6, 6), width=1) == 1.0
    with pytest.raises(ValueError):
        border_share([0.0] * 36, (6, 6))


def test_itop_tracker_counts_weights_ever_active():
    from torch import nn

    from sparsenb.core.masks import Masking
    from sparsenb.train.metrics import ITOPTracker

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 2), nn.Linear(2, 2))
    masks = Masking(model)
    m = torch.zeros(2, 4, dtype=torch.bool)
    m[0, 0] = m[1, 1] = True
    masks.set_masks({"0.weight": m})  # layer 1 stays dense: not tracked
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    masks.attach(opt)
    tracker = ITOPTracker(masks).attach(opt)
    assert set(tracker.ever) == {"0.weight"} and tracker.rate() == 2 / 8
    m2 = torch.zeros(2, 4, dtype=torch.bool)
    m2[0, 0] = m2[1, 3] = True  # one weight moved: 3 positions ever active
    masks.update("0.weight", m2)
    assert tracker.rate() == 2 / 8  # not observed until the next step
    model(torch.randn(3, 4)).sum().backward()
    opt.step()
    assert tracker.rate() == 3 / 8
    tracker.detach()
    masks.update("0.weight", ~m2)
    opt.step()
    assert tracker.rate() == 3 / 8
    with pytest.raises(ValueError, match="dense"):
        ITOPTracker(Masking(nn.Sequential(nn.Linear(2, 2))))
