"""The coding form of a trained VLAE: integer networks and integer tables, bit-exact everywhere.

This is the only model the codec sees. It offers three things, all as integers:
- `posterior(x)`: mu and log sigma of q(z|x), for each of an image's K codes (K = 1 for a
  global code, one per block for a grid of codes; `code_grid` says how many);
- `prior_conditionals(z)`: shift and log scale of every p(z_i | z_<i), for rows of codes;
- pixel distributions: `features(z, height, width)` once per image, then
  `pixel_params(x, features)` for whole images or `pixel_params_at(...)` for single pixels
  from their causal windows, and `pixel_freqs(params, stage, earlier)` to turn those into
  frequency tables that sum to 2^PRECISION, one stage (symbol) of one channel at a time.
The Gaussian CDF, exp, sigmoid and logistic CDF are lookup tables stored with the weights,
so no floating-point function whose last bit could differ between machines is evaluated.

Fixed-point positions: z and shifts at 2^-Z_BITS, log scales at 2^-LOG_BITS, Bernoulli and
mixture logits at 2^-LOGIT_BITS, mixture means (input units) at 2^-MEAN_BITS; table
outputs as documented on each table, channel coefficients at 2^-COEF_BITS. Pixels enter as
integers: x for binary images, 2x - 255 (that is, (x - 127.5)/128 at 2^-8) for 8-bit ones.

The networks run on `device` (the CPU unless `to` moved them to a CUDA GPU); their results
come back to the CPU, where the tables and everything after them stay. Results are the same
integers on either.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.nn import functional as F

from . import encoder as enc_mod
from . import likelihoods
from . import prior as prior_mod
from .config import VLAEConfig
from .decoder import window_mask
from .encoder import pad_to_blocks
from .quantize import ACT_MAX, IntLayer, activation_bits, quantize_layer
from .vlae import VLAE, code_rows

PRECISION = 24  # every frequency table sums to 2^PRECISION (constriction's default)
Z_BITS = 12
LOG_BITS = 10
LOGIT_BITS = 8
LOGIT_MAX = 16 << LOGIT_BITS
Z_MAX = 16 << Z_BITS
MEAN_BITS = 12
MEAN_MAX = 2 << MEAN_BITS
COEF_BITS = 12
COEF_MAX = int(likelihoods.COEF_MAX) << COEF_BITS
EXP_BITS = 24  # exp table output: exp(l) * 2^EXP_BITS, l in [-EXP_RANGE, EXP_RANGE]
EXP_RANGE = 9
CDF_BITS = 30  # Gaussian and logistic CDF table outputs
T_BITS = 10  # CDF table inputs: t * 2^T_BITS, t in [-T_MAX, T_MAX] (Gaussian), [-L_MAX, L_MAX]
T_MAX = 8
L_MAX = 24
WEIGHT_BITS = 16  # mixture weight table output: exp(logit - max logit) * 2^WEIGHT_BITS
PIXEL_CHUNK = 4096  # pixels per mixture-table evaluation (small enough to stay in cache)
MAX_BINS_LOG2 = 12
OFFSET_BITS = 6  # pixel parameter offsets (`with_offsets`) are multiples of 2^-OFFSET_BITS
OFFSET_MAX = 4 << OFFSET_BITS
FILES = ("coding.safetensors", "coding.json")


class CodingModel:
    """Integer-only VLAE. Inputs and outputs are int64 CPU tensors; internals float64 integers."""

    config_class = VLAEConfig  # what `load` rebuilds the stored config as

    def __init__(self, cfg: VLAEConfig, layers: dict[str, IntLayer], tables: dict[str, torch.Tensor],
                 bins: dict[str, list[int]]):
        self.cfg = cfg
        self.layers = layers
        self.tables = tables
        self.lossless_bins = bins["lossless"]  # equal-mass bins of each p(z_i | z_<i)
        self.lossy_bins = bins["lossy"]
        self.rows, self.half = cfg.window_rows, cfg.window_half_width
        self.channels = cfg.channels
        mask = window_mask(self.rows, self.half)
        taps = mask.nonzero().tolist()
        # (dy, dx) of every pixel the window sees, relative to the current pixel.
        self.window_offsets = [(r - self.rows, c - self.half) for r, c in taps]
        self.dy = np.array([o[0] for o in self.window_offsets])
        self.dx = np.array([o[1] for o in self.window_offsets])
        w = layers["head.window"].weight  # (hidden, C, rows+1, 2*half+1); windows are tap-major
        self._window_matrix = torch.stack([w[:, :, r, c] for r, c in taps], dim=1).reshape(w.shape[0], -1)
        self._hash: str | None = None
        self.device = torch.device("cpu")  # where the networks run
        self.offsets: torch.Tensor | None = None  # see `with_offsets`

    def to(self, device: str | torch.device) -> "CodingModel":
        """A copy whose networks run on `device` (see `network_device`); tables stay on the CPU."""
        device = network_device(device)
        moved = copy.copy(self)
        moved.layers = {name: layer.to(device) for name, layer in self.layers.items()}
        moved._window_matrix = self._window_matrix.to(device)
        moved.device = device
        return moved

    @property
    def param_bits(self) -> torch.Tensor:
        """Fixed-point position of each pixel parameter (P,): parameter p is stored times 2^bits[p]."""
        return pixel_param_bits(self.cfg)

    def with_offsets(self, offsets: torch.Tensor | None) -> "CodingModel":
        """A copy whose pixel parameters are moved by `offsets` (P,) at 2^-OFFSET_BITS in each
        parameter's own units, before their clamps (None: unmoved). A file may carry offsets
        that fit its images better than the trained output layer (codec/tuning.py)."""
        moved = copy.copy(self)
        if offsets is None:
            moved.offsets = None
            return moved
        offsets = torch.as_tensor(offsets, dtype=torch.long)
        if offsets.shape != self.param_bits.shape or offsets.abs().max() > OFFSET_MAX:
            raise ValueError(f"pixel offsets must be {len(self.param_bits)} integers within +-{OFFSET_MAX}")
        moved.offsets = (offsets << (self.param_bits - OFFSET_BITS)).double()
        return moved

    def clean_bins(self, shift: int) -> list[int]:
        """Bins per latent dimension for a file's clean start: the lossy bins divided by 2^shift
        (at least 1). ValueError where the model stores no tables for them."""
        bins = [max(1, k >> shift) for k in self.lossy_bins]
        if shift < 0 or any(k > 1 and f"edges.{k}" not in self.tables for k in bins):
            raise ValueError(f"model has no clean-start bins at shift {shift}")
        return bins

    # ---------------------------------------------------------------- inputs
    def input(self, x: torch.Tensor) -> torch.Tensor:
        """Integer network input of pixel values (float64 holding integers)."""
        x = x.double()
        return x if self.cfg.likelihood == "bernoulli" else 2 * x - 255

    # ---------------------------------------------------------------- posterior
    @property
    def bit_depth(self) -> int:
        """Bits per channel of the images it codes: 1 (binary) or 8."""
        return 1 if self.cfg.likelihood == "bernoulli" else 8

    def code_grid(self, height: int, width: int) -> tuple[int, int]:
        """Rows and columns of an image's grid of codes; (1, 1) for a global code."""
        b = self.cfg.block
        return (-(-height // b), -(-width // b)) if b else (1, 1)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log_sigma) of q(z|x) for integer images (N, C, H, W); int64 (N, K, D) each,
        codes in raster order of the grid."""
        a = self.input(x.to(self.device))
        if self.cfg.block:
            a = pad_to_blocks(a, self.cfg.block)
            for k in range(7):
                a = self.layers[f"enc.{k}"](a)
            out = code_rows(a)
        else:
            for k in range(4):
                a = self.layers[f"enc.{k}"](a)
            a = self.layers["enc.4"](a.flatten(1))
            out = self.layers["enc.5"](a)[:, None, :]
        d = self.cfg.latent_dim
        mu = out[..., :d].clamp(-Z_MAX, Z_MAX)
        log_sigma = out[..., d:].clamp(enc_mod.LOG_SIGMA_MIN * 2**LOG_BITS, enc_mod.LOG_SIGMA_MAX * 2**LOG_BITS)
        return mu.long().cpu(), log_sigma.long().cpu()

    # ---------------------------------------------------------------- prior
    def prior_conditionals(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(shift, log_scale) of every p(z_i | z_<i) for codes (..., D), int64 of the same shape;
        entry i ignores z_>=i exactly (masked weights are integer zeros)."""
        a = z.to(self.device).double()
        n = len(self.cfg.made_hidden)
        for k in range(n + 1):
            a = self.layers[f"made.{k}"](a)
        d = self.cfg.latent_dim
        shift = a[..., :d].clamp(-Z_MAX, Z_MAX)
        log_scale = a[..., d:].clamp(prior_mod.LOG_SCALE_MIN * 2**LOG_BITS, prior_mod.LOG_SCALE_MAX * 2**LOG_BITS)
        return shift.long().cpu(), log_scale.long().cpu()

    # ---------------------------------------------------------------- pixels
    def features(self, z: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Integer feature map of codes (N, K, D) on the pixel grid, (N, hidden, H, W), computed
        once per image."""
        cfg, z = self.cfg, z.to(self.device)
        if cfg.block:
            rows, cols = self.code_grid(height, width)
            a = z.double().transpose(1, 2).reshape(len(z), cfg.latent_dim, rows, cols)
            for name in ("feat.mix", "feat.hidden"):
                a = self.layers[name](a)
            a = F.pixel_shuffle(self.layers["feat.to_pixels"](a), cfg.block)
            return a[..., :height, :width].contiguous().cpu()
        a = self.layers["feat.linear"](z[:, 0].double())
        a = a.view(-1, cfg.feature_channels, cfg.height // 4, cfg.width // 4)
        a = self.layers["feat.up"](a)
        return F.pixel_shuffle(self.layers["feat.to_pixels"](a), 2).cpu()

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
        if self.cfg.likelihood == "bernoulli":
            return h.clamp_(-LOGIT_MAX, LOGIT_MAX).long()
        m, c = self.cfg.mixtures, self.channels
        mix = h[:, :3 * m * c].view(len(h), c, 3, m)
        mix[:, :, 0].clamp_(-LOGIT_MAX, LOGIT_MAX)
        mix[:, :, 1].clamp_(-MEAN_MAX, MEAN_MAX)
        mix[:, :, 2].clamp_(likelihoods.LOG_SCALE_MIN * 2**LOG_BITS, likelihoods.LOG_SCALE_MAX * 2**LOG_BITS)
        h[:, 3 * m * c:].clamp_(-COEF_MAX, COEF_MAX)
        return h.long()

    # A binary pixel is one symbol. An 8-bit channel is two: its group of 16 levels, then its
    # level within the group; each table needs the mixture's CDF at 17 edges, not 257. The
    # channels of a pixel follow each other: stage s is channel s // 2.
    @property
    def pixel_stages(self) -> int:
        return 1 if self.cfg.likelihood == "bernoulli" else 2 * self.channels

    def pixel_symbols(self, values: torch.Tensor) -> list[torch.Tensor]:
        """The symbols of each stage for pixel values (M, C) (int64)."""
        if self.cfg.likelihood == "bernoulli":
            return [values[:, 0]]
        return [s for c in range(self.channels) for s in (values[:, c] >> 4, values[:, c] & 15)]

    def pixel_value(self, symbols: list[torch.Tensor]) -> torch.Tensor:
        """Pixel values (M, C) from the symbols of all stages."""
        if self.cfg.likelihood == "bernoulli":
            return symbols[0][:, None]
        return torch.stack([(symbols[2 * c] << 4) + symbols[2 * c + 1] for c in range(self.channels)], dim=1)

    def pixel_mean(self, params: torch.Tensor) -> torch.Tensor:
        """Each pixel's mean under its distribution, rounded to a level, channel after channel
        (each given the earlier ones' means) (int64 (M, C)); for a binary pixel its most likely
        value. Integer arithmetic, so it is exact."""
        if self.cfg.likelihood == "bernoulli":
            return (params[:, :1] > 0).long()  # a tie goes to 0, as the most likely symbol would
        levels: list[torch.Tensor] = []
        for c in range(self.channels):
            logits, means, _ = self._channel(params, c, levels)
            weights = self.tables["mix_weight"][logits.max(dim=1, keepdim=True).values - logits]
            # Components' means clipped to the level range stand in for their discretized means.
            lo, hi = -255 << (MEAN_BITS - 8), 255 << (MEAN_BITS - 8)  # levels 0 and 255 in input units
            mean = torch.div((weights * means.clamp(lo, hi)).sum(dim=1), weights.sum(dim=1), rounding_mode="floor")
            # level = mean * 128 + 127.5, rounded: mean is at 2^-MEAN_BITS.
            level = (mean * 128 + (255 << (MEAN_BITS - 1)) + (1 << (MEAN_BITS - 1))) >> MEAN_BITS
            levels.append(level.clamp(0, likelihoods.LEVELS - 1))
        return torch.stack(levels, dim=1)

    def pixel_freqs(self, params: torch.Tensor, stage: int, earlier: list[torch.Tensor]) -> torch.Tensor:
        """Frequency tables (M, K) for one stage of M pixels, given their parameters (M, P) and
        the symbols of the earlier stages; every row sums to 2^PRECISION, no entry is 0."""
        if self.cfg.likelihood == "bernoulli":
            one = self.tables["sigmoid"][params[:, 0] + LOGIT_MAX]
            return torch.stack([(1 << PRECISION) - one, one], dim=-1)
        channel, within = divmod(stage, 2)
        values = [(earlier[2 * e] << 4) + earlier[2 * e + 1] for e in range(channel)]
        logits, means, log_scales = self._channel(params, channel, values)
        step = 16 if within == 0 else 1
        first = torch.zeros(len(params), dtype=torch.long) if within == 0 else earlier[-1] << 4
        edges = first[:, None] + step * torch.arange(17)[None, :]  # level edges k: between k-1 and k
        out = [self._mixture_cdf(logits[i:i + PIXEL_CHUNK], means[i:i + PIXEL_CHUNK],
                                 log_scales[i:i + PIXEL_CHUNK], edges[i:i + PIXEL_CHUNK])
               for i in range(0, len(params), PIXEL_CHUNK)]
        cdf = torch.cat(out) if out else torch.zeros(0, 17, dtype=torch.long)
        return torch.from_numpy(normalize(torch.diff(cdf, dim=1).numpy()))

    def _channel(self, params: torch.Tensor, channel: int,
                 values: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, means, log scales), each (M, m), of one channel's mixture, its means moved
        by its coefficients times the values (levels) of the channels before it."""
        m, c = self.cfg.mixtures, self.channels
        base = 3 * m * channel
        logits, means, log_scales = (params[:, base + k * m:base + (k + 1) * m] for k in range(3))
        if channel:
            pull = torch.zeros(len(params), dtype=torch.long)
            for k, (target, source) in enumerate(self._pairs):
                if target == channel:
                    pull += params[:, 3 * m * c + k] * (2 * values[source] - 255)
            # coefficient (2^-COEF_BITS) times input (2^-8), brought to 2^-MEAN_BITS.
            means = (means + (pull >> (COEF_BITS + 8 - MEAN_BITS))[:, None]).clamp(-MEAN_MAX, MEAN_MAX)
        return logits, means, log_scales

    @property
    def _pairs(self) -> list[tuple[int, int]]:
        return [(c, e) for c in range(self.channels) for e in range(c)]

    def _mixture_cdf(self, logits: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor,
                     edges: torch.Tensor) -> torch.Tensor:
        """Mixture CDF at 2^-CDF_BITS below level edges k in 0..256 (k = 0: nothing, 256: all):
        each logistic's CDF from the table, mixed with integer weights from the weight table."""
        weights = self.tables["mix_weight"][logits.max(dim=1, keepdim=True).values - logits]  # (P, m)
        inv_scale = self.exp(-log_scales)  # at 2^-EXP_BITS
        at = (edges - 128) << (MEAN_BITS - 7)  # edge k is at (k - 1/2 - 127.5)/128 in input units
        t = ((at[:, None, :] - means[:, :, None]) * inv_scale[:, :, None]) >> (MEAN_BITS + EXP_BITS - T_BITS)
        lim = L_MAX << T_BITS
        cdf = (weights[:, :, None] * self.tables["logistic"][t.clamp_(-lim, lim) + lim]).sum(dim=1)
        cdf = torch.div(cdf, weights.sum(dim=1, keepdim=True), rounding_mode="floor")
        cdf[edges <= 0] = 0
        cdf[edges >= likelihoods.LEVELS] = 1 << CDF_BITS
        return cdf

    # ---------------------------------------------------------------- tables
    def exp(self, log_value: torch.Tensor) -> torch.Tensor:
        """round(exp(l * 2^-LOG_BITS) * 2^EXP_BITS) for log values in the stored range."""
        return self.tables["exp"][log_value - self.tables["exp_offset"].item()]

    def gaussian_cdf(self, t: torch.Tensor) -> torch.Tensor:
        """round(Phi(t * 2^-T_BITS) * 2^CDF_BITS), t clipped to [-T_MAX, T_MAX]."""
        lim = T_MAX << T_BITS
        return self.tables["phi"][t.clamp(-lim, lim) + lim]

    def bin_edges(self, k: int) -> torch.Tensor:
        """Inner edges Phi^-1(b/K), b = 1..K-1, of K equal-mass bins of N(0,1), at 2^-Z_BITS."""
        return self.tables[f"edges.{k}"]

    def bin_centers(self, k: int) -> torch.Tensor:
        """Phi^-1((b + 1/2)/K), b = 0..K-1, at 2^-Z_BITS: where a bin puts its z."""
        return self.tables[f"centers.{k}"]

    # ---------------------------------------------------------------- storage
    def save(self, directory: str | os.PathLike) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors, metas = {}, {}
        for name, layer in self.layers.items():
            tensors.update(layer.tensors(name))
            metas[name] = layer.meta()
        tensors.update({f"table.{k}": v for k, v in self.tables.items()})
        tmp = directory / (FILES[0] + ".tmp")
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
        os.replace(tmp, directory / FILES[0])
        meta = {"config": json.loads(self.cfg.to_json()), "layers": metas,
                "bins": {"lossless": self.lossless_bins, "lossy": self.lossy_bins}}
        tmp = directory / (FILES[1] + ".tmp")
        tmp.write_text(json.dumps(meta, indent=1) + "\n")
        os.replace(tmp, directory / FILES[1])

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "CodingModel":
        directory = Path(directory)
        meta = json.loads((directory / FILES[1]).read_text())
        tensors = load_file(str(directory / FILES[0]))
        layers = {name: IntLayer.from_saved(name, tensors, m) for name, m in meta["layers"].items()}
        tables = {k[len("table."):]: v for k, v in tensors.items() if k.startswith("table.")}
        model = cls(cls.config_class.from_dict(meta["config"]), layers, tables, meta["bins"])
        model._hash = file_hash(directory)
        return model

    @property
    def weights_hash(self) -> str:
        """sha256 over the coding files: the identity a compressed file records."""
        if self._hash is None:
            raise ValueError("hash is known only for a saved coding model")
        return self._hash


def pixel_param_bits(cfg: VLAEConfig) -> torch.Tensor:
    """Fixed-point position of each pixel parameter (P,), in the likelihood's order: per channel
    its mixture logits, means and log scales, then the channel coefficients."""
    if cfg.likelihood == "bernoulli":
        return torch.full((cfg.channels,), LOGIT_BITS)
    m, c = cfg.mixtures, cfg.channels
    per_channel = [LOGIT_BITS] * m + [MEAN_BITS] * m + [LOG_BITS] * m
    return torch.tensor(per_channel * c + [COEF_BITS] * (c * (c - 1) // 2))


def network_device(device: str | torch.device) -> torch.device:
    """The torch device `device` names, if the integer networks can run there exactly; else ValueError."""
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {str(device)!r} (use cpu, cuda or cuda:N)") from None
    # float64 sums of integers are exact on CPUs and CUDA GPUs; other backends lack float64 or are unchecked.
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device} is not supported (use cpu, cuda or cuda:N)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {device} is not available: this machine has {torch.cuda.device_count()} "
                         "usable CUDA GPU(s)")
    return device


def normalize(mass: np.ndarray) -> np.ndarray:
    """Integer masses (rows of any positive total) -> frequencies >= 1 summing to 2^PRECISION.

    Each symbol gets 1 plus its floored share of the rest; what flooring leaves over goes to
    the first most likely symbol. Pure integer arithmetic, so encoder and decoder agree.
    A row whose mass is all zero becomes 1 everywhere plus the rest on its first symbol.
    """
    k = mass.shape[-1]
    one = 1 << PRECISION
    total = np.maximum(mass.sum(axis=-1, keepdims=True), 1)
    freqs = 1 + (mass * (one - k)) // total
    rest = one - freqs.sum(axis=-1)
    top = mass.argmax(axis=-1)
    np.add.at(freqs, (np.arange(len(freqs)), top), rest)
    return freqs


def file_hash(directory: str | os.PathLike) -> str:
    h = hashlib.sha256()
    for name in FILES:
        h.update((Path(directory) / name).read_bytes())
    return h.hexdigest()


# -------------------------------------------------------------------- conversion
def _tables(bin_counts: set[int]) -> dict[str, torch.Tensor]:
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


def _choose_bins(model: VLAE, x: torch.Tensor, lossy_per_width: float) -> dict[str, list[int]]:
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


def convert(model: VLAE, calibration: torch.Tensor, lossy_bins_per_width: float = 4.0) -> CodingModel:
    """Quantize a trained float VLAE; `calibration` (N, C, H, W) images set activation ranges;
    `lossy_bins_per_width` sets how finely the lossy mode's code is binned (see `_choose_bins`)."""
    model = model.eval()
    cfg = model.cfg
    layers: dict[str, IntLayer] = {}
    maxima: list[float] = []

    def add(name, kind, mod_weight, mod_bias, a_float, in_bits, in_max, out_float, out_bits=None,
            lo=-ACT_MAX, hi=ACT_MAX, **kw):
        """Quantize one layer; returns its output fixed-point position."""
        n_out = mod_weight.shape[1 if kind == "conv_transpose" else 0]
        if out_bits is None:
            out_bits = activation_bits(out_float.abs().max().item())
        ob = torch.full((n_out,), float(out_bits)) if not torch.is_tensor(out_bits) else out_bits
        try:
            layers[name] = quantize_layer(kind, mod_weight, mod_bias, in_bits, ob, in_max, lo=lo, hi=hi, **kw)
        except ValueError as e:
            raise ValueError(f"layer {name}: {e}") from None
        maxima.append(out_float.abs().max().item())
        return out_bits

    with torch.no_grad():
        xf = model.x_in(calibration)
        # Integer inputs: x (0/1) for binary pixels, 2x - 255 = (x - 127.5)/128 at 2^-8 otherwise.
        in_bits, in_max = (0, 1.0) if cfg.likelihood == "bernoulli" else (8, 255.0)
        d = cfg.latent_dim
        code_bits = torch.tensor([float(Z_BITS)] * d + [float(LOG_BITS)] * d)
        convs = [m for m in model.encoder.convs if isinstance(m, torch.nn.Conv2d)]
        a, bits, a_max = xf, in_bits, in_max
        if cfg.block:
            # Encoder: convs down to one position per block; the last gives mu and log sigma.
            a = pad_to_blocks(a, cfg.block)
            for k, conv in enumerate(convs):
                last = k == len(convs) - 1
                out = conv(a) if last else torch.relu(conv(a))
                bits = add(f"enc.{k}", "conv", conv.weight, conv.bias, a, bits, a_max, out,
                           out_bits=code_bits if last else None, lo=-(2**40) if last else 0,
                           hi=2**40 if last else ACT_MAX, stride=conv.stride[0], padding=conv.padding[0])
                a, a_max = out, ACT_MAX
        else:
            # Encoder: four convs, hidden linear, output linear.
            for k, conv in enumerate(convs):
                out = torch.relu(conv(a))
                bits = add(f"enc.{k}", "conv", conv.weight, conv.bias, a, bits, a_max, out,
                           lo=0, stride=conv.stride[0], padding=conv.padding[0])
                a, a_max = out, ACT_MAX
            hid, last = model.encoder.head[1], model.encoder.head[3]
            a = a.flatten(1)
            out = torch.relu(hid(a))
            bits = add("enc.4", "linear", hid.weight, hid.bias, a, bits, ACT_MAX, out, lo=0)
            add("enc.5", "linear", last.weight, last.bias, out, bits, ACT_MAX, last(out), out_bits=code_bits,
                lo=-(2**40), hi=2**40)

        # Prior: MADE on z samples from the posterior, every code a row.
        mu, log_sigma = model.encoder(xf)
        z_grid = mu + torch.exp(log_sigma) * torch.randn_like(mu)
        z = code_rows(z_grid).reshape(-1, d)
        a, bits, a_max = z, Z_BITS, Z_MAX
        for k, layer in enumerate(model.prior.layers[:-1]):
            out = torch.relu(layer(a))
            bits = add(f"made.{k}", "linear", layer.weight * layer.mask, layer.bias, a, bits, a_max, out, lo=0)
            a, a_max = out, ACT_MAX
        layer = model.prior.layers[-1]
        add(f"made.{len(model.prior.layers) - 1}", "linear", layer.weight * layer.mask, layer.bias, a, bits,
            ACT_MAX, layer(a), out_bits=code_bits, lo=-(2**40), hi=2**40)

        # Decoder: z features, then the head; window and features share one fixed-point position.
        feat = model.decoder.features
        if cfg.block:
            out = torch.relu(feat.mix(z_grid))
            bits = add("feat.mix", "conv", feat.mix.weight, feat.mix.bias, z_grid, Z_BITS, Z_MAX, out, lo=0,
                       padding=1)
            a, out = out, torch.relu(feat.hidden(out))
            bits = add("feat.hidden", "conv", feat.hidden.weight, feat.hidden.bias, a, bits, ACT_MAX, out, lo=0)
            features = F.pixel_shuffle(feat.to_pixels(out), cfg.block)[..., :xf.shape[-2], :xf.shape[-1]]
        else:
            out = torch.relu(feat.linear(z))
            bits = add("feat.linear", "linear", feat.linear.weight, feat.linear.bias, z, Z_BITS, Z_MAX, out,
                       lo=0)
            a = out.view(-1, feat.c, feat.h4, feat.w4)
            out = torch.relu(feat.up(a))
            bits = add("feat.up", "conv_transpose", feat.up.weight, feat.up.bias, a, bits, ACT_MAX, out, lo=0,
                       stride=2, padding=1)
            features = F.pixel_shuffle(feat.to_pixels(out), 2)
        head = model.decoder.head
        xp = F.pad(xf, (head.half, head.half, head.rows, 0))
        win = F.conv2d(xp, head.window.weight * head.mask)
        hidden_bits = activation_bits(max(features.abs().max().item(), win.abs().max().item(),
                                          (features + win).abs().max().item()))
        add("feat.to_pixels", "conv", feat.to_pixels.weight, feat.to_pixels.bias, out, bits, ACT_MAX,
            features, out_bits=hidden_bits)
        add("head.window", "conv", head.window.weight * head.mask, None, xp, in_bits, in_max, win,
            out_bits=hidden_bits)
        param_bits = pixel_param_bits(cfg).double()
        a, bits = torch.relu(win + features), hidden_bits
        for k, layer in enumerate(head.pointwise):
            is_last = k == len(head.pointwise) - 1
            out = layer(a) if is_last else torch.relu(layer(a))
            bits = add(f"head.pw.{k}", "conv", layer.weight, layer.bias, a, bits, ACT_MAX, out,
                       out_bits=param_bits if is_last else None, lo=-(2**40) if is_last else 0,
                       hi=2**40 if is_last else ACT_MAX)
            a = out

    bins = _choose_bins(model, calibration, lossy_bins_per_width)
    # Every power of two up to the largest count, so that a file's clean start can use coarser bins.
    largest = max(bins["lossless"] + bins["lossy"])
    tables = _tables({1 << i for i in range(largest.bit_length())})
    return CodingModel(cfg, layers, tables, bins)
