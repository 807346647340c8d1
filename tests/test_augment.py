import torch

from sparsenb.train.augment import RandomCropFlip


def test_no_padding_gives_identity_or_mirror_image():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    out = RandomCropFlip(padding=0, seed=1)(x)
    for i in range(2):
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(-1))


def test_crop_is_a_shift_of_the_zero_padded_image():
    x = torch.rand(16, 1, 6, 6) + 1  # no zeros inside the image
    aug = RandomCropFlip(padding=2, flip=False, seed=0)
    out = aug(x)
    assert out.shape == x.shape
    for i in range(16):
        padded = torch.nn.functional.pad(x[i], (2, 2, 2, 2))
        windows = [padded[:, r:r + 6, c:c + 6] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    assert not torch.equal(out, x)  # 16 images: some were moved


def test_generator_state_replays_the_same_augmentation():
    x = torch.rand(8, 3, 8, 8)
    aug = RandomCropFlip(seed=3)
    state = aug.generator.get_state()
    first = aug(x)
    aug.generator.set_state(state)
    assert torch.equal(aug(x), first)
    assert not torch.equal(RandomCropFlip(seed=4)(x), first)
