"""Per-subpixel likelihoods p(x_i | params): Bernoulli now; 256-level ones come later."""

from __future__ import annotations

import torch
from torch.nn import functional as F

_PARAMS = {"bernoulli": 1}


def params_per_subpixel(name: str) -> int:
    """Number of network outputs each subpixel needs for the named likelihood."""
    try:
        return _PARAMS[name]
    except KeyError:
        raise ValueError(f"unknown likelihood {name!r}; known: {sorted(_PARAMS)}") from None


def log_prob(name: str, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """log p(x | params) in nats, summed over each image."""
    if name == "bernoulli":
        ll = -F.binary_cross_entropy_with_logits(params, x, reduction="none")
        return ll.flatten(1).sum(dim=1)
    raise ValueError(f"unknown likelihood {name!r}")


def sample(name: str, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One draw per subpixel."""
    if name == "bernoulli":
        return torch.bernoulli(torch.sigmoid(params), generator=generator)
    raise ValueError(f"unknown likelihood {name!r}")


def to_input(name: str, x: torch.Tensor) -> torch.Tensor:
    """Pixels (integer values) as the networks' float input."""
    if name == "bernoulli":
        return x.float()
    raise ValueError(f"unknown likelihood {name!r}")
