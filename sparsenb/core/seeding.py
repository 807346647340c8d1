"""Independent random streams derived from one user-facing seed.

Why: ``torch.manual_seed(s)`` followed by ``torch.Generator().manual_seed(s)``
gives two generators that produce the *same* numbers. If the model's weights
are drawn from the first and a "random" mask from the second, the mask is the
top-k of the initial weights (it keeps the largest positive ones), not random.
Every generator sparsenb seeds for masks or topology therefore goes through
:func:`generator` with a stream name, which hashes ``(seed, stream)`` into an
unrelated 63-bit seed.
"""
from __future__ import annotations

import hashlib

import torch

__all__ = ["derived_seed", "generator"]


def derived_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the random stream ``stream`` of ``seed`` (sha256 of ``"seed:stream"``)."""
    digest = hashlib.sha256(f"{int(seed)}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def generator(seed: int, stream: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` seeded with :func:`derived_seed` (independent of ``torch.manual_seed(seed)``)."""
    return torch.Generator(device=device).manual_seed(derived_seed(seed, stream))
