"""Evaluation of the float model: negative ELBO, KL, reconstruction and importance-sampled NLL."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from .data import to_tensor
from .vlae import VLAE

LOG2 = math.log(2)


@torch.no_grad()
def evaluate(model: VLAE, images: np.ndarray, is_samples: int = 100, elbo_samples: int = 10,
             batch_size: int = 100, seed: int = 0, progress: Callable[[int], None] | None = None) -> dict:
    """Means over all images. The ELBO terms average `elbo_samples` draws per image; the
    importance-sampled bound uses `is_samples` draws (0 skips it)."""
    torch.manual_seed(seed)
    model.eval()
    dims = model.cfg.dims
    sums = {"neg_elbo": 0.0, "kl": 0.0, "recon": 0.0, "nll_is": 0.0}
    for start in range(0, len(images), batch_size):
        x = to_tensor(images[start:start + batch_size])
        for _ in range(elbo_samples):
            terms = model.elbo_terms(x)
            for k in ("neg_elbo", "kl", "recon"):
                sums[k] += terms[k].sum().item() / elbo_samples
        if is_samples:
            sums["nll_is"] -= model.importance_log_px(x, is_samples).sum().item()
        if progress:
            progress(len(x))
    n = len(images)
    out = {
        "images": n,
        "neg_elbo_nats_per_image": sums["neg_elbo"] / n,
        "neg_elbo_bits_per_dim": sums["neg_elbo"] / n / dims / LOG2,
        "kl_bits_per_image": sums["kl"] / n / LOG2,
        "recon_nats_per_image": sums["recon"] / n,
        "recon_bits_per_dim": sums["recon"] / n / dims / LOG2,
    }
    if is_samples:
        out.update({"is_samples": is_samples, "nll_is_nats_per_image": sums["nll_is"] / n,
                    "nll_is_bits_per_dim": sums["nll_is"] / n / dims / LOG2})
    return out
