"""Exact integer coding form of the BB-ANS MLP VAE: a `CodingModel` (model/interface.py) for the codec.

`MLPCodingModel` is a `CodingForm` (model/form.py: the project's tables, fixed-point
positions, pixel frequency tables and storage) with its own networks. The prior is
N(0, I): every conditional has shift 0 and log scale 0. The decoder has no autoregression,
so its causal window is empty (no rows, no taps): `features` runs the decoder MLP once per
image and gives every pixel's likelihood parameters, and `pixel_params_at` passes them on.
"""

from __future__ import annotations

import numpy as np
import torch

from vlae_codec.model import likelihoods
from vlae_codec.model.coding import choose_bins, make_tables
from vlae_codec.model.fixed_point import LOG_BITS, LOGIT_BITS, LOGIT_MAX, MEAN_BITS, MEAN_MAX, Z_BITS, Z_MAX
from vlae_codec.model.form import CodingForm
from vlae_codec.model.encoder import LOG_SIGMA_MAX, LOG_SIGMA_MIN
from vlae_codec.model.quantize import ACT_MAX, IntLayer, activation_bits, quantize_layer

from .mlp_vae import MLPConfig, MLPVAE

LAYERS = ("enc.0", "enc.1", "dec.0", "dec.1")
WIDE = 2**40  # output layers are clamped afterwards, per parameter kind


class MLPCodingModel(CodingForm):
    """Integer-only BB-ANS VAE. Inputs and outputs are int64 tensors; internals float64 integers."""

    config_class = MLPConfig

    def __init__(self, cfg: MLPConfig, layers: dict[str, IntLayer], tables: dict[str, torch.Tensor],
                 bins: dict[str, list[int]]):
        missing = set(LAYERS) - set(layers)
        if missing:
            raise ValueError(f"coding form lacks layers {sorted(missing)}")
        super().__init__(cfg, layers, tables, bins)
        # Pixels are independent given z: a window of no rows and no taps.
        self.rows = self.half = 0
        self.window_offsets: list[tuple[int, int]] = []
        self.dy = np.zeros(0, dtype=np.int64)
        self.dx = np.zeros(0, dtype=np.int64)

    def _check_size(self, height: int, width: int) -> None:
        if (height, width) != (self.cfg.height, self.cfg.width):
            raise ValueError(f"this model codes {self.cfg.height}x{self.cfg.width} images, not {height}x{width}")

    def code_grid(self, height: int, width: int) -> tuple[int, int]:
        """One global code per image."""
        return 1, 1

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log_sigma) of q(z|x) for integer images (N, C, H, W); int64 (N, 1, D) each."""
        self._check_size(*x.shape[-2:])
        out = self.layers["enc.1"](self.layers["enc.0"](self.input(x).flatten(1)))[:, None, :]
        d = self.cfg.latent_dim
        mu = out[..., :d].clamp(-Z_MAX, Z_MAX)
        log_sigma = out[..., d:].clamp(LOG_SIGMA_MIN * 2**LOG_BITS, LOG_SIGMA_MAX * 2**LOG_BITS)
        return mu.long(), log_sigma.long()

    def prior_conditionals(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """N(0, 1) for every dimension whatever z is: shift 0, log scale 0, shaped like z."""
        return torch.zeros(z.shape, dtype=torch.long), torch.zeros(z.shape, dtype=torch.long)

    def prior_conditional(self, z: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(z.shape[:-1], dtype=torch.long), torch.zeros(z.shape[:-1], dtype=torch.long)

    def features(self, z: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Every pixel's likelihood parameters for codes (N, 1, D): int64 (N, P, H, W), in the
        fixed-point format of the project's `pixel_freqs`."""
        self._check_size(height, width)
        cfg = self.cfg
        a = self.layers["dec.1"](self.layers["dec.0"](z[:, 0].double()))
        params = a.view(len(z), cfg.params_per_pixel, height, width)
        if cfg.likelihood == "bernoulli":
            params.clamp_(-LOGIT_MAX, LOGIT_MAX)
        else:
            logits, means, log_scales = params.chunk(3, dim=1)
            logits.clamp_(-LOGIT_MAX, LOGIT_MAX)
            means.clamp_(-MEAN_MAX, MEAN_MAX)
            log_scales.clamp_(likelihoods.LOG_SCALE_MIN * 2**LOG_BITS, likelihoods.LOG_SCALE_MAX * 2**LOG_BITS)
        return params.long()

    def pixel_params(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Parameters of every pixel of whole images: the features themselves (no window)."""
        return features.long()

    def pixel_params_at(self, windows: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Parameters of single pixels (M, P): their features; the windows are empty (M, 0)."""
        return features.long()


def convert(model: MLPVAE, calibration: torch.Tensor, seed: int = 0) -> MLPCodingModel:
    """Quantize a trained float model; `calibration` images (N, 1, H, W) set activation ranges."""
    model = model.eval()
    cfg = model.cfg
    d = cfg.latent_dim
    torch.manual_seed(seed)
    with torch.no_grad():
        xf = model.x_in(calibration).flatten(1)
        # Integer inputs: x (0/1) for binary pixels, 2x - 255 = (x - 127.5)/128 at 2^-8 otherwise.
        in_bits, in_max = (0, 1.0) if cfg.likelihood == "bernoulli" else (8, 255.0)
        enc, dec = model.encoder, model.decoder
        h = torch.relu(enc.hidden(xf))
        h_bits = activation_bits(h.abs().max().item())
        layers = {"enc.0": quantize_layer("linear", enc.hidden.weight, enc.hidden.bias, in_bits,
                                          torch.full((cfg.hidden,), float(h_bits)), in_max, lo=0, hi=ACT_MAX)}
        code_bits = torch.tensor([float(Z_BITS)] * d + [float(LOG_BITS)] * d)
        layers["enc.1"] = quantize_layer("linear", enc.out.weight, enc.out.bias, h_bits, code_bits, ACT_MAX,
                                         lo=-WIDE, hi=WIDE)
        # Decoder ranges from z drawn from the posterior, as the coder's z are.
        mu, log_sigma = enc(xf)
        z = mu + torch.exp(log_sigma) * torch.randn_like(mu)
        g = torch.relu(dec.hidden(z))
        g_bits = activation_bits(g.abs().max().item())
        layers["dec.0"] = quantize_layer("linear", dec.hidden.weight, dec.hidden.bias, Z_BITS,
                                         torch.full((cfg.hidden,), float(g_bits)), Z_MAX, lo=0, hi=ACT_MAX)
        if cfg.likelihood == "bernoulli":
            kinds = [float(LOGIT_BITS)]
        else:
            m = cfg.mixtures
            kinds = [float(LOGIT_BITS)] * m + [float(MEAN_BITS)] * m + [float(LOG_BITS)] * m
        # Decoder outputs are parameter-major: all pixels' first parameter, then the second, ...
        param_bits = torch.tensor(kinds).repeat_interleave(cfg.dims)
        layers["dec.1"] = quantize_layer("linear", dec.out.weight, dec.out.bias, g_bits, param_bits, ACT_MAX,
                                         lo=-WIDE, hi=WIDE)
    bins = choose_bins(model, calibration)
    tables = make_tables(set(bins["lossless"]) | set(bins["lossy"]))
    return MLPCodingModel(cfg, layers, tables, bins)
