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
COEF_MAX = 4.0  # bound on the channel coefficients, so their integer form has a known range


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
    """Discretized mixture of `mixtures` logistics per subpixel (PixelCNN++).

    Parameters per pixel: for each channel its mixture logits, means (in input units) and log
    scales, `mixtures` channels each; then, with C > 1 channels, one coefficient per pair of
    channels (G on R, B on R, B on G). Channels are coded in order: a channel's means move by
    its coefficients times the earlier channels' values, as in PixelCNN++.
    """

    def __init__(self, cfg):
        self.m, self.c = cfg.mixtures, cfg.channels
        self.pairs = [(c, e) for c in range(self.c) for e in range(c)]
        self.n_params = 3 * self.m * self.c + len(self.pairs)

    @staticmethod
    def to_input(x: torch.Tensor) -> torch.Tensor:
        return (x - 127.5) / 128.0

    def split(self, params: torch.Tensor, x_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, means, log scales), each (N, C, m, H, W); the means include the earlier channels' pull."""
        n, _, h, w = params.shape
        mix = params[:, :3 * self.m * self.c].view(n, self.c, 3, self.m, h, w)
        logits, means, log_scales = mix.unbind(dim=2)
        if self.pairs:
            coefs = params[:, 3 * self.m * self.c:].clamp(-COEF_MAX, COEF_MAX)
            pull = [torch.zeros_like(x_in[:, 0]) for _ in range(self.c)]
            for k, (c, e) in enumerate(self.pairs):
                pull[c] = pull[c] + coefs[:, k] * x_in[:, e]
            means = means + torch.stack(pull, dim=1)[:, :, None]
        return logits, means, log_scales.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        logits, means, log_scales = self.split(params, self.to_input(x))
        x = x[:, :, None]
        inv = torch.exp(-log_scales)
        upper = torch.where(x >= LEVELS - 1, _FAR, (x - 127.0) / 128.0)
        lower = torch.where(x <= 0, -_FAR, (x - 128.0) / 128.0)
        a, b = (upper - means) * inv, (lower - means) * inv
        # log(sigmoid(a) - sigmoid(b)) = logsigmoid(a) + logsigmoid(-b) + log(1 - exp(b - a)).
        log_mass = F.logsigmoid(a) + F.logsigmoid(-b) + torch.log(-torch.expm1(b - a).clamp(max=-1e-12))
        ll = torch.logsumexp(log_mass + F.log_softmax(logits, dim=2), dim=2)
        return ll.flatten(1).sum(dim=1)


_KINDS = {"bernoulli": Bernoulli, "logistic_mixture": LogisticMixture}


def get(cfg):
    """The likelihood a config names."""
    try:
        return _KINDS[cfg.likelihood](cfg)
    except KeyError:
        raise ValueError(f"unknown likelihood {cfg.likelihood!r}; known: {sorted(_KINDS)}") from None

