"""The coding model's negative ELBO: the information content the coder would write, per image."""

from __future__ import annotations

import torch

from . import bitsback
from .ans import SamplingStack
from .model.interface import CodingModel


def coding_neg_elbo(model: CodingModel, x: torch.Tensor, seed: int = 0, chunk: int = 1024,
                    batch: int = 256, progress=None) -> bitsback.Info:
    """-log2 p(x|z) - log2 p(z) + log2 q(z|x) on discretized z ~ q, per image, by running the
    bits-back encoder on a stack that samples instead of popping."""
    stack = SamplingStack(seed)
    parts = []
    for start in range(0, len(x), chunk):
        parts.append(bitsback.encode_chunk(stack, model, x[start:start + chunk], batch))
        if progress:
            progress(len(parts[-1].pixels))
    return bitsback.Info.joined(parts)
