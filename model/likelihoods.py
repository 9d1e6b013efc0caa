"""Per-subpixel likelihoods p(x | params): Bernoulli for binary pixels, a discretized
logistic mixture for 8-bit ones. Pixels arrive as floats holding their integer values."""

from __future__ import annotations

import torch
from torch.nn import functional as F

# 8-bit pixels enter the networks as (x - 127.5) / 128, so the 255 inner edges between
# levels, x - 1/2 for x = 1..255, sit at exact multiples of 2^-7: (x - 128) / 128.
LEVELS = 256
LOG_SCALE_MIN, LOG_SCALE_MAX = -7.0, 3.0
_FAR = 1e4  # stands in for the infinite outer edges


class Bernoulli:
    """p(x=1) = sigmoid(logit); one parameter per subpixel."""

    def __init__(self, cfg):
        self.n_params = cfg.channels

    @staticmethod
    def to_input(x: torch.Tensor) -> torch.Tensor:
        return x

    @staticmethod
    def log_prob(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        return -F.binary_cross_entropy_with_logits(params, x, reduction="none").flatten(1).sum(dim=1)


class LogisticMixture:
    """Discretized mixture of `mixtures` logistics per subpixel (PixelCNN++, greyscale).

    Parameters per pixel: mixture logits, means (in input units) and log scales, each
    `mixtures` channels, in that order.
    """

    def __init__(self, cfg):
        if cfg.channels != 1:
            raise ValueError("the logistic mixture supports one channel so far")
        self.m = cfg.mixtures
        self.n_params = 3 * self.m

    @staticmethod
    def to_input(x: torch.Tensor) -> torch.Tensor:
        return (x - 127.5) / 128.0

    def split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, means, log_scales = params.split(self.m, dim=1)
        return logits, means, log_scales.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        logits, means, log_scales = self.split(params)
        inv = torch.exp(-log_scales)
        upper = torch.where(x >= LEVELS - 1, _FAR, (x - 127.0) / 128.0)
        lower = torch.where(x <= 0, -_FAR, (x - 128.0) / 128.0)
        a, b = (upper - means) * inv, (lower - means) * inv
        # log(sigmoid(a) - sigmoid(b)) = logsigmoid(a) + logsigmoid(-b) + log(1 - exp(b - a)).
        log_mass = F.logsigmoid(a) + F.logsigmoid(-b) + torch.log(-torch.expm1(b - a).clamp(max=-1e-12))
        ll = torch.logsumexp(log_mass + F.log_softmax(logits, dim=1), dim=1)
        return ll.flatten(1).sum(dim=1)


_KINDS = {"bernoulli": Bernoulli, "logistic_mixture": LogisticMixture}


def get(cfg):
    """The likelihood a config names."""
    try:
        return _KINDS[cfg.likelihood](cfg)
    except KeyError:
        raise ValueError(f"unknown likelihood {cfg.likelihood!r}; known: {sorted(_KINDS)}") from None

