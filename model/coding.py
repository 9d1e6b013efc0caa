"""The coding form of a trained VLAE: its integer networks, and `convert`, which makes them.

`VLAECodingModel` implements model/interface.py's `CodingModel` on a `CodingForm`
(model/form.py: the stored layers, tables and bins, and the arithmetic shared by every
coding model); here are its networks, all on integers:
- `posterior(x)`: mu and log sigma of q(z|x), for each of an image's K codes (K = 1 for a
  global code, one per block for a grid of codes; `code_grid` says how many);
- `prior_conditionals(z)`: shift and log scale of every p(z_i | z_<i), for rows of codes;
- `features(z, height, width)` once per image, then `pixel_params(x, features)` for whole
  images or `pixel_params_at(...)` for single pixels from their causal windows.
The Gaussian CDF, exp, sigmoid and logistic CDF are lookup tables stored with the weights,
so no floating-point function whose last bit could differ between machines is evaluated.

Fixed-point positions (model/fixed_point.py): z and shifts at 2^-Z_BITS, log scales at
2^-LOG_BITS, Bernoulli and mixture logits at 2^-LOGIT_BITS, mixture means (input units) at
2^-MEAN_BITS; table outputs as documented on each table, channel coefficients at
2^-COEF_BITS. Pixels enter as integers: x for binary images, 2x - 255 (that is,
(x - 127.5)/128 at 2^-8) for 8-bit ones.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property

import numpy as np
import torch
from torch.nn import functional as F

from ..ans import PRECISION
from . import encoder as enc_mod
from . import likelihoods
from . import prior as prior_mod
from .config import VLAEConfig
from .decoder import window_mask
from .encoder import pad_to_blocks
from .fixed_point import (CDF_BITS, COEF_MAX, EXP_BITS, EXP_RANGE, L_MAX, LOG_BITS, LOGIT_BITS, LOGIT_MAX, MEAN_MAX,
                          T_BITS, T_MAX, WEIGHT_BITS, Z_BITS, Z_MAX)
from .form import CodingForm, pixel_param_bits
from .pixel_features import BlockFeatures, WholeFeatures
from .quantize import ACT_MAX, IntLayer, activation_bits, quantize_layer
from .vlae import VLAE, code_rows

MAX_BINS_LOG2 = 12
# The grid encoder's code at a block sees 2 blocks on every side (a 3x3 conv at full
# resolution, three 4x4 stride-2 convs and a 3x3 at 1/8: pixel rows 8r-16 .. 8r+23 for block
# row r), so tiles with that halo give the whole image's integers (tests/test_coding.py).
POSTERIOR_TILE, ENCODER_HALO = 48, 2
WHOLE_MAP_BYTES = 512 << 20  # a grid of codes' feature map is made whole up to this size
FEATURE_BATCH = 256  # images whose global-code features are made at once (bounds memory, not results)


class VLAECodingModel(CodingForm):
    """Integer-only VLAE. Inputs and outputs are int64 CPU tensors; internals float64 integers."""

    config_class = VLAEConfig  # what `load` rebuilds the stored config as

    def __init__(self, cfg: VLAEConfig, layers: dict[str, IntLayer], tables: dict[str, torch.Tensor],
                 bins: dict[str, list[int]]):
        super().__init__(cfg, layers, tables, bins)
        self.rows, self.half = cfg.window_rows, cfg.window_half_width
        taps = window_mask(self.rows, self.half).nonzero().tolist()
        # (dy, dx) of every pixel the window sees, relative to the current pixel.
        self.window_offsets = [(r - self.rows, c - self.half) for r, c in taps]
        self.dy = np.array([o[0] for o in self.window_offsets])
        self.dx = np.array([o[1] for o in self.window_offsets])
        w = layers["head.window"].weight  # (hidden, C, rows+1, 2*half+1); windows are tap-major
        self._window_matrix = torch.stack([w[:, :, r, c] for r, c in taps], dim=1).reshape(w.shape[0], -1)

    def to(self, device: str | torch.device) -> "VLAECodingModel":
        """A copy whose networks run on `device` (see `network_device`); tables stay on the CPU."""
        moved = super().to(device)
        moved._window_matrix = self._window_matrix.to(moved.device)
        moved.__dict__.pop("_prior_slices", None)  # cut from the layers on the old device
        return moved

    def code_grid(self, height: int, width: int) -> tuple[int, int]:
        """Rows and columns of an image's grid of codes; (1, 1) for a global code."""
        b = self.cfg.block
        return (-(-height // b), -(-width // b)) if b else (1, 1)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log_sigma) of q(z|x) for integer images (N, C, H, W); int64 (N, K, D) each,
        codes in raster order of the grid."""
        if self.cfg.block:
            out = code_rows(self._code_grid_posterior(pad_to_blocks(x, self.cfg.block)))
        else:
            a = self.input(x.to(self.device))
            for k in range(4):
                a = self.layers[f"enc.{k}"](a)
            a = self.layers["enc.4"](a.flatten(1))
            out = self.layers["enc.5"](a)[:, None, :]
        d = self.cfg.latent_dim
        mu = out[..., :d].clamp(-Z_MAX, Z_MAX)
        log_sigma = out[..., d:].clamp(enc_mod.LOG_SIGMA_MIN * 2**LOG_BITS, enc_mod.LOG_SIGMA_MAX * 2**LOG_BITS)
        return mu.long().cpu(), log_sigma.long().cpu()

    def _code_grid_posterior(self, x: torch.Tensor) -> torch.Tensor:
        """The grid encoder's output (N, 2D, rows, cols) for images padded to whole blocks, a tile
        of POSTERIOR_TILE x POSTERIOR_TILE blocks at a time, each with ENCODER_HALO blocks of
        its neighbours around it: the same integers as the whole image at once, whose first
        layers alone would take gigabytes for a large photo."""
        b, t, halo = self.cfg.block, POSTERIOR_TILE, ENCODER_HALO
        n, _, height, width = x.shape
        rows, cols = height // b, width // b
        out = torch.empty(n, 2 * self.cfg.latent_dim, rows, cols, dtype=torch.float64, device=self.device)
        for r0 in range(0, rows, t):
            for c0 in range(0, cols, t):
                top, left = max(0, r0 - halo), max(0, c0 - halo)
                bottom, right = min(rows, r0 + t + halo), min(cols, c0 + t + halo)
                a = self.input(x[:, :, top * b:bottom * b, left * b:right * b].to(self.device))
                for k in range(7):
                    a = self.layers[f"enc.{k}"](a)
                out[:, :, r0:r0 + t, c0:c0 + t] = a[:, :, r0 - top:r0 - top + t, c0 - left:c0 - left + t]
        return out

    # ---------------------------------------------------------------- prior
    def prior_conditionals(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(shift, log_scale) of every p(z_i | z_<i) for codes (..., D), int64 of the same shape;
        entry i ignores z_>=i exactly (masked weights are integer zeros)."""
        a = z.to(self.device).double()
        n = len(self.cfg.made_hidden)
        for k in range(n + 1):
            a = self.layers[f"made.{k}"](a)
        d = self.cfg.latent_dim
        return self._prior_out(a[..., :d], a[..., d:])

    def prior_conditional(self, z: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(shift, log_scale) of p(z_i | z_<i) alone for codes (..., D): entry i of
        `prior_conditionals`, from only the units it depends on (a walk over bmnist's 32
        dimensions makes 3.4 times fewer products). Same integers: the units and inputs left
        out reach it only through zero weights."""
        inputs, layers = self._prior_slices[i]
        a = z.to(self.device)[..., inputs].double()
        for layer in layers:
            a = layer(a)
        return self._prior_out(a[..., 0], a[..., 1])

    @staticmethod
    def _prior_out(shift: torch.Tensor, log_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shift = shift.clamp(-Z_MAX, Z_MAX)
        log_scale = log_scale.clamp(prior_mod.LOG_SCALE_MIN * 2**LOG_BITS, prior_mod.LOG_SCALE_MAX * 2**LOG_BITS)
        return shift.long().cpu(), log_scale.long().cpu()

    @cached_property
    def _prior_slices(self) -> list[tuple[torch.Tensor, list[IntLayer]]]:
        """For each dimension i, the inputs p(z_i | z_<i) reads and the MADE cut down to the
        units it depends on: walking back from its two outputs, each layer keeps the rows that
        are needed and the columns with a nonzero weight into them."""
        d = self.cfg.latent_dim
        made = [self.layers[f"made.{k}"] for k in range(len(self.cfg.made_hidden) + 1)]
        slices = []
        for i in range(d):
            rows = torch.tensor([i, d + i], device=self.device)
            cut = []
            for layer in reversed(made):
                cols = layer.weight[rows].ne(0).any(dim=0).nonzero().flatten()
                cut.append(replace(layer, weight=layer.weight[rows][:, cols], scale=layer.scale[rows],
                                   bias=None if layer.bias is None else layer.bias[rows]))
                rows = cols
            slices.append((rows, cut[::-1]))
        return slices

    # ---------------------------------------------------------------- pixels
    def features(self, z: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Integer feature map of codes (N, K, D) on the pixel grid, (N, hidden, H, W), int16."""
        return self.pixel_features(z, height, width).whole()

    def pixel_features(self, z: torch.Tensor, height: int, width: int) -> BlockFeatures | WholeFeatures:
        """The features of codes (N, K, D), handed out by position (model/pixel_features.py):
        a grid of codes' a block at a time, a global code's as one precomputed map."""
        cfg, z = self.cfg, z.to(self.device)
        if cfg.block:
            rows, cols = self.code_grid(height, width)
            a = z.double().transpose(1, 2).reshape(len(z), cfg.latent_dim, rows, cols)
            for name in ("feat.mix", "feat.hidden"):
                a = self.layers[name](a)
            blocks = BlockFeatures(self.layers["feat.to_pixels"], a, cfg.block, height, width)
            # A map this small is made at once: whole rows of blocks cost less per block than
            # the wavefront's few at a time, and a lookup is then one gather (kodim23's features
            # 0.8-1.0 -> 0.6 s). Only larger images need the blocks' bounded memory.
            if height * width * len(z) * cfg.pixel_hidden * 2 <= WHOLE_MAP_BYTES:
                return WholeFeatures.of_map(blocks.whole())
            return blocks
        out = torch.empty(height, width, len(z), cfg.pixel_hidden, dtype=torch.int16)
        # Each half-resolution position gives its 2x2 pixels' features, channel f*4 + 2i + j
        # for pixel (i, j) as pixel_shuffle has it; written straight into the position-major
        # map, one copy instead of a shuffle and a transpose.
        pixels = out.view(height // 2, 2, width // 2, 2, len(z), cfg.pixel_hidden)
        for i in range(0, len(z), FEATURE_BATCH):
            a = self.layers["feat.linear"](z[i:i + FEATURE_BATCH, 0].double())
            a = a.view(-1, cfg.feature_channels, cfg.height // 4, cfg.width // 4)
            a = self.layers["feat.to_pixels"](self.layers["feat.up"](a))
            a = a.view(len(a), cfg.pixel_hidden, 2, 2, height // 2, width // 2)
            pixels[:, :, :, :, i:i + FEATURE_BATCH] = a.permute(4, 2, 5, 3, 0, 1)
        return WholeFeatures(out)

    def pixel_params(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters of every pixel of whole images (N, C, H, W): int64 (N, P, H, W)."""
        xp = F.pad(self.input(x.to(self.device)), (self.half, self.half, self.rows, 0))
        win = self.layers["head.window"](xp)
        h = (win + features.to(self.device)).clamp_(0, ACT_MAX)
        n, c, height, width = h.shape
        # Pixels as rows: the 1x1 layers become matrix products on contiguous memory.
        params = self._head(h.permute(0, 2, 3, 1).reshape(-1, c))
        return params.view(n, height, width, -1).permute(0, 3, 1, 2).cpu()

    def pixel_params_at(self, windows: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Parameters of single pixels from their windows of network inputs (M, taps*C), tap-major,
        and their features (M, hidden): int64 (M, P)."""
        layer = self.layers["head.window"]
        win = layer.rescale(windows.to(self.device).double() @ self._window_matrix.T)
        h = (win + features.to(self.device).double()).clamp_(0, ACT_MAX)
        return self._head(h).cpu()

    def _head(self, h: torch.Tensor) -> torch.Tensor:
        """The 1x1 layers, on pixels (M, C): hidden features to likelihood parameters."""
        for k in range(self.cfg.pixel_layers):
            h = self.layers[f"head.pw.{k}"].pointwise(h)
        if self.offsets is not None:
            h += self.offsets.to(h.device)
        lo, hi = self._param_range
        return torch.minimum(torch.maximum(h, lo.to(h.device)), hi.to(h.device)).long()

    @cached_property
    def _param_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The bounds (P,) each pixel parameter is clamped to: logits, means, log scales, coefficients."""
        if self.cfg.likelihood == "bernoulli":
            return torch.tensor([-LOGIT_MAX], dtype=torch.float64), torch.tensor([LOGIT_MAX], dtype=torch.float64)
        m, c = self.cfg.mixtures, self.channels
        log_scale = (likelihoods.LOG_SCALE_MIN * 2**LOG_BITS, likelihoods.LOG_SCALE_MAX * 2**LOG_BITS)
        per_channel = [(-LOGIT_MAX, LOGIT_MAX)] * m + [(-MEAN_MAX, MEAN_MAX)] * m + [log_scale] * m
        bounds = per_channel * c + [(-COEF_MAX, COEF_MAX)] * (c * (c - 1) // 2)
        return tuple(torch.tensor(b, dtype=torch.float64) for b in zip(*bounds))


# -------------------------------------------------------------------- conversion
def make_tables(bin_counts: set[int]) -> dict[str, torch.Tensor]:
    """Lookup tables, computed once in float64 at conversion and stored as integers."""
    t = {}
    ls = torch.arange(-EXP_RANGE << LOG_BITS, (EXP_RANGE << LOG_BITS) + 1, dtype=torch.float64)
    t["exp"] = torch.round(torch.exp(ls / 2**LOG_BITS) * 2**EXP_BITS).long()
    t["exp_offset"] = torch.tensor([-EXP_RANGE << LOG_BITS], dtype=torch.long)
    ts = torch.arange(-T_MAX << T_BITS, (T_MAX << T_BITS) + 1, dtype=torch.float64)
    t["phi"] = torch.round(torch.special.ndtr(ts / 2**T_BITS) * 2**CDF_BITS).long()
    t["phi"][0], t["phi"][-1] = 0, 1 << CDF_BITS
    ts = torch.arange(-L_MAX << T_BITS, (L_MAX << T_BITS) + 1, dtype=torch.float64)
    t["logistic"] = torch.round(torch.sigmoid(ts / 2**T_BITS) * 2**CDF_BITS).long()
    t["logistic"][0], t["logistic"][-1] = 0, 1 << CDF_BITS
    gap = torch.arange(0, 2 * LOGIT_MAX + 1, dtype=torch.float64)
    t["mix_weight"] = torch.round(torch.exp(-gap / 2**LOGIT_BITS) * 2**WEIGHT_BITS).long()
    lg = torch.arange(-LOGIT_MAX, LOGIT_MAX + 1, dtype=torch.float64)
    p1 = torch.round(torch.sigmoid(lg / 2**LOGIT_BITS) * 2**PRECISION).long()
    t["sigmoid"] = p1.clamp(1, (1 << PRECISION) - 1)
    for k in sorted(bin_counts):
        if k > 1:
            b = torch.arange(1, k, dtype=torch.float64)
            t[f"edges.{k}"] = torch.round(torch.special.ndtri(b / k) * 2**Z_BITS).long()
        c = torch.arange(k, dtype=torch.float64) + 0.5
        t[f"centers.{k}"] = torch.round(torch.special.ndtri(c / k) * 2**Z_BITS).long()
    return t


def choose_bins(model: VLAE, x: torch.Tensor, lossy_per_width: float = 4.0) -> dict[str, list[int]]:
    """Bins per latent dimension from the typical posterior width in units of the prior's scale.

    Lossless: fine bins (about 1/16 of that width), so discretization costs little.
    Lossy: `lossy_per_width` bins per width (4 by default): a few bits per active dimension
    above the KL buy a code close to the posterior mean, which is what keeps a digit's class
    (measured on MNIST: bins as wide as the posterior lose it more often; 8 per width kept it
    as often as 4 on the whole test set, at 3 more bytes per digit).
    A dimension whose KL to its prior conditional is negligible (< 0.05 bits on average)
    gets one bin: z_i is the conditional's median, and it costs nothing.
    """
    with torch.no_grad():
        mu, log_sigma = model.encoder(model.x_in(x))
        d = model.cfg.latent_dim
        mu, log_sigma = code_rows(mu).reshape(-1, d), code_rows(log_sigma).reshape(-1, d)
        shift, log_scale = model.prior.conditionals(mu)
        ratio = torch.exp(log_sigma - log_scale)
        offset = (mu - shift) * torch.exp(-log_scale)
        kl_bits = (0.5 * (ratio**2 + offset**2 - 1) - torch.log(ratio)).mean(dim=0) / np.log(2)
        width = ratio.median(dim=0).values
    lossless, lossy = [], []
    for r, kl in zip(width.tolist(), kl_bits.tolist()):
        if kl < 0.05:
            lossless.append(1)
            lossy.append(1)
            continue
        lossless.append(2 ** int(min(MAX_BINS_LOG2, max(1, np.ceil(np.log2(16.0 / r))))))
        lossy.append(2 ** int(min(MAX_BINS_LOG2, max(0, np.ceil(np.log2(lossy_per_width / r))))))
    return {"lossless": lossless, "lossy": lossy}


def convert(model: VLAE, calibration: torch.Tensor, lossy_bins_per_width: float = 4.0) -> VLAECodingModel:
    """Quantize a trained float VLAE; `calibration` (N, C, H, W) images set activation ranges;
    `lossy_bins_per_width` sets how finely the lossy mode's code is binned (see `choose_bins`)."""
    model = model.eval()
    cfg = model.cfg
    layers = _Layers()
    with torch.no_grad():
        xf = model.x_in(calibration)
        # Integer inputs: x (0/1) for binary pixels, 2x - 255 = (x - 127.5)/128 at 2^-8 otherwise.
        pixels_in = (0, 1.0) if cfg.likelihood == "bernoulli" else (8, 255.0)
        _convert_encoder(layers, model, xf, pixels_in)
        # Prior and decoder see z samples from the posterior, every code a row for the prior.
        mu, log_sigma = model.encoder(xf)
        z_grid = mu + torch.exp(log_sigma) * torch.randn_like(mu)
        z = code_rows(z_grid).reshape(-1, cfg.latent_dim)
        _convert_prior(layers, model, z)
        _convert_decoder(layers, model, xf, pixels_in, z, z_grid)

    bins = choose_bins(model, calibration, lossy_bins_per_width)
    # Every power of two up to the largest count, so that a file's clean start can use coarser bins.
    largest = max(bins["lossless"] + bins["lossy"])
    tables = make_tables({1 << i for i in range(largest.bit_length())})
    return VLAECodingModel(cfg, layers.done, tables, bins)


class _Layers:
    """The integer layers made so far, by name."""

    def __init__(self):
        self.done: dict[str, IntLayer] = {}

    def add(self, name, kind, mod_weight, mod_bias, a_float, in_bits, in_max, out_float, out_bits=None,
            lo=-ACT_MAX, hi=ACT_MAX, **kw):
        """Quantize one layer; returns its output fixed-point position."""
        n_out = mod_weight.shape[1 if kind == "conv_transpose" else 0]
        if out_bits is None:
            out_bits = activation_bits(out_float.abs().max().item())
        ob = torch.full((n_out,), float(out_bits)) if not torch.is_tensor(out_bits) else out_bits
        try:
            self.done[name] = quantize_layer(kind, mod_weight, mod_bias, in_bits, ob, in_max, lo=lo, hi=hi, **kw)
        except ValueError as e:
            raise ValueError(f"layer {name}: {e}") from None
        return out_bits


def _code_bits(cfg: VLAEConfig) -> torch.Tensor:
    """Output positions of a layer that gives (mu or shift, log sigma or log scale) per dimension."""
    d = cfg.latent_dim
    return torch.tensor([float(Z_BITS)] * d + [float(LOG_BITS)] * d)


def _convert_encoder(layers: _Layers, model: VLAE, xf: torch.Tensor, pixels_in: tuple[int, float]) -> None:
    """Convs to mu and log sigma: down to one position per block, or to one global code."""
    cfg = model.cfg
    convs = [m for m in model.encoder.convs if isinstance(m, torch.nn.Conv2d)]
    a, (bits, a_max) = xf, pixels_in
    if cfg.block:
        # The last conv gives mu and log sigma.
        a = pad_to_blocks(a, cfg.block)
        for k, conv in enumerate(convs):
            last = k == len(convs) - 1
            out = conv(a) if last else torch.relu(conv(a))
            bits = layers.add(f"enc.{k}", "conv", conv.weight, conv.bias, a, bits, a_max, out,
                              out_bits=_code_bits(cfg) if last else None, lo=-(2**40) if last else 0,
                              hi=2**40 if last else ACT_MAX, stride=conv.stride[0], padding=conv.padding[0])
            a, a_max = out, ACT_MAX
        return
    # Four convs, hidden linear, output linear.
    for k, conv in enumerate(convs):
        out = torch.relu(conv(a))
        bits = layers.add(f"enc.{k}", "conv", conv.weight, conv.bias, a, bits, a_max, out,
                          lo=0, stride=conv.stride[0], padding=conv.padding[0])
        a, a_max = out, ACT_MAX
    hid, last = model.encoder.head[1], model.encoder.head[3]
    a = a.flatten(1)
    out = torch.relu(hid(a))
    bits = layers.add("enc.4", "linear", hid.weight, hid.bias, a, bits, ACT_MAX, out, lo=0)
    layers.add("enc.5", "linear", last.weight, last.bias, out, bits, ACT_MAX, last(out), out_bits=_code_bits(cfg),
               lo=-(2**40), hi=2**40)


def _convert_prior(layers: _Layers, model: VLAE, z: torch.Tensor) -> None:
    """The MADE, on codes as rows."""
    a, bits, a_max = z, Z_BITS, Z_MAX
    for k, layer in enumerate(model.prior.layers[:-1]):
        out = torch.relu(layer(a))
        bits = layers.add(f"made.{k}", "linear", layer.weight * layer.mask, layer.bias, a, bits, a_max, out, lo=0)
        a, a_max = out, ACT_MAX
    layer = model.prior.layers[-1]
    layers.add(f"made.{len(model.prior.layers) - 1}", "linear", layer.weight * layer.mask, layer.bias, a, bits,
               ACT_MAX, layer(a), out_bits=_code_bits(model.cfg), lo=-(2**40), hi=2**40)


def _convert_decoder(layers: _Layers, model: VLAE, xf: torch.Tensor, pixels_in: tuple[int, float],
                     z: torch.Tensor, z_grid: torch.Tensor) -> None:
    """z features, then the head; window and features share one fixed-point position."""
    cfg, feat = model.cfg, model.decoder.features
    if cfg.block:
        out = torch.relu(feat.mix(z_grid))
        bits = layers.add("feat.mix", "conv", feat.mix.weight, feat.mix.bias, z_grid, Z_BITS, Z_MAX, out, lo=0,
                          padding=1)
        a, out = out, torch.relu(feat.hidden(out))
        bits = layers.add("feat.hidden", "conv", feat.hidden.weight, feat.hidden.bias, a, bits, ACT_MAX, out, lo=0)
        features = F.pixel_shuffle(feat.to_pixels(out), cfg.block)[..., :xf.shape[-2], :xf.shape[-1]]
    else:
        out = torch.relu(feat.linear(z))
        bits = layers.add("feat.linear", "linear", feat.linear.weight, feat.linear.bias, z, Z_BITS, Z_MAX, out,
                          lo=0)
        a = out.view(-1, feat.c, feat.h4, feat.w4)
        out = torch.relu(feat.up(a))
        bits = layers.add("feat.up", "conv_transpose", feat.up.weight, feat.up.bias, a, bits, ACT_MAX, out, lo=0,
                          stride=2, padding=1)
        features = F.pixel_shuffle(feat.to_pixels(out), 2)
    head = model.decoder.head
    xp = F.pad(xf, (head.half, head.half, head.rows, 0))
    win = F.conv2d(xp, head.window.weight * head.mask)
    hidden_bits = activation_bits(max(features.abs().max().item(), win.abs().max().item(),
                                      (features + win).abs().max().item()))
    layers.add("feat.to_pixels", "conv", feat.to_pixels.weight, feat.to_pixels.bias, out, bits, ACT_MAX,
               features, out_bits=hidden_bits)
    layers.add("head.window", "conv", head.window.weight * head.mask, None, xp, *pixels_in, win,
               out_bits=hidden_bits)
    param_bits = pixel_param_bits(cfg).double()
    a, bits = torch.relu(win + features), hidden_bits
    for k, layer in enumerate(head.pointwise):
        is_last = k == len(head.pointwise) - 1
        out = layer(a) if is_last else torch.relu(layer(a))
        bits = layers.add(f"head.pw.{k}", "conv", layer.weight, layer.bias, a, bits, ACT_MAX, out,
                          out_bits=param_bits if is_last else None, lo=-(2**40) if is_last else 0,
                          hi=2**40 if is_last else ACT_MAX)
        a = out
