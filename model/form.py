"""The stored coding form of a model: integer layers, lookup tables and latent bins, and the
exact arithmetic on them that every coding model shares (tables, pixel frequency tables).

A network-specific coding model (model/coding.py, the BB-ANS baseline's) subclasses
`CodingForm` and adds its networks: `posterior`, `prior_conditionals`, `features` (and, for
large maps, `pixel_features`), `pixel_params`, `pixel_params_at`, `code_grid` and its causal
window (`rows`, `half`, `dy`, `dx`), which together with what is here make up
model/interface.py's `CodingModel`.

The networks run on `device` (the CPU unless `to` moved them to a CUDA GPU); their results
come back to the CPU, where the tables and everything after them stay. Results are the same
integers on either.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..ans import PRECISION, normalize
from . import likelihoods
from .fixed_point import (CDF_BITS, COEF_BITS, EXP_BITS, L_MAX, LOG_BITS, LOGIT_BITS, LOGIT_MAX,
                          MEAN_BITS, MEAN_MAX, OFFSET_BITS, OFFSET_MAX, T_BITS, T_MAX)
from .pixel_features import WholeFeatures
from .quantize import IntLayer

PIXEL_CHUNK = 4096  # pixels per mixture-table evaluation (small enough to stay in cache)
FILES = ("coding.safetensors", "coding.json")
_GROUP_EDGES = np.arange(0, 257, 16)  # the first stage's edges: groups of 16 levels
_LEVEL_EDGES = np.arange(17)  # the second stage's, from its group's first level
# Where the edge below level k (k = 0..256) lies in input units, at 2^-MEAN_BITS:
# (k - 1/2 - 127.5) / 128. The outer two stand so far out that every logistic's CDF there is
# the logistic table's end, exactly 0 or 1, for any mean and log scale within their clamps
# ((2^22 - MEAN_MAX) * exp(-LOG_SCALE_MAX) at 2^-(MEAN_BITS + EXP_BITS - T_BITS) > L_MAX),
# while (2^22 + MEAN_MAX) * exp(-LOG_SCALE_MIN) * 2^EXP_BITS stays far inside int64.
_EDGE_AT = (np.arange(257) - 128) << (MEAN_BITS - 7)
_EDGE_AT[[0, -1]] = -(1 << 22), 1 << 22
_GROUP_AT = _EDGE_AT[_GROUP_EDGES][None, :]
_T_SHIFT = MEAN_BITS + EXP_BITS - T_BITS  # (edge - mean) * inverse scale, down to 2^-T_BITS


class CodingForm:
    """Integer layers, tables and bins of a coding model. Inputs and outputs are int64 CPU
    tensors; internals float64 integers."""

    config_class: type  # what `load` rebuilds the stored config as

    def __init__(self, cfg, layers: dict[str, IntLayer], tables: dict[str, torch.Tensor],
                 bins: dict[str, list[int]]):
        self.cfg = cfg
        self.layers = layers
        self.tables = tables
        self.lossless_bins = bins["lossless"]  # equal-mass bins of each p(z_i | z_<i)
        self.lossy_bins = bins["lossy"]
        self.channels = cfg.channels
        self._hash: str | None = None
        self.device = torch.device("cpu")  # where the networks run
        self.offsets: torch.Tensor | None = None  # see `with_offsets`
        self._terms_cache: tuple | None = None  # see `_mixture_terms`

    def to(self, device: str | torch.device) -> "CodingForm":
        """A copy whose networks run on `device` (see `network_device`); tables stay on the CPU."""
        device = network_device(device)
        moved = copy.copy(self)
        moved.layers = {name: layer.to(device) for name, layer in self.layers.items()}
        moved.device = device
        return moved

    @property
    def param_bits(self) -> torch.Tensor:
        """Fixed-point position of each pixel parameter (P,): parameter p is stored times 2^bits[p]."""
        return pixel_param_bits(self.cfg)

    def with_offsets(self, offsets: torch.Tensor | None) -> "CodingForm":
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

    def pixel_features(self, z: torch.Tensor, height: int, width: int) -> WholeFeatures:
        """The features of codes, handed out by position (model/pixel_features.py); a subclass
        whose maps are large makes them as they are asked for."""
        return WholeFeatures.of_map(self.features(z, height, width))

    def input(self, x: torch.Tensor) -> torch.Tensor:
        """Integer network input of pixel values (float64 holding integers)."""
        x = x.double()
        return x if self.cfg.likelihood == "bernoulli" else 2 * x - 255

    @property
    def bit_depth(self) -> int:
        """Bits per channel of the images it codes: 1 (binary) or 8."""
        return 1 if self.cfg.likelihood == "bernoulli" else 8

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
        p = params.numpy()
        levels: list[np.ndarray] = []
        for c in range(self.channels):
            logits, means, _ = self._channel(p, c, levels)
            weights = self._np_tables["mix_weight"][logits.max(axis=1, keepdims=True) - logits]
            # Components' means clipped to the level range stand in for their discretized means.
            lo, hi = -255 << (MEAN_BITS - 8), 255 << (MEAN_BITS - 8)  # levels 0 and 255 in input units
            mean = (weights * np.clip(means, lo, hi)).sum(axis=1) // weights.sum(axis=1)
            # level = mean * 128 + 127.5, rounded: mean is at 2^-MEAN_BITS.
            level = (mean * 128 + (255 << (MEAN_BITS - 1)) + (1 << (MEAN_BITS - 1))) >> MEAN_BITS
            levels.append(np.clip(level, 0, likelihoods.LEVELS - 1))
        return torch.from_numpy(np.stack(levels, axis=1))

    def pixel_freqs(self, params: torch.Tensor, stage: int, earlier: list[torch.Tensor]) -> torch.Tensor:
        """Frequency tables (M, K) for one stage of M pixels, given their parameters (M, P) and
        the symbols of the earlier stages; every row sums to 2^PRECISION, no entry is 0."""
        # In numpy: a decoder's wavefront step holds a few hundred pixels, where torch's
        # per-operation overhead would cost more than the arithmetic (same integers either way).
        p = params.numpy()
        if self.cfg.likelihood == "bernoulli":
            one = self._np_tables["sigmoid"][p[:, 0] + LOGIT_MAX]
            return torch.from_numpy(np.stack([(1 << PRECISION) - one, one], axis=-1))
        channel, within = divmod(stage, 2)
        symbols = [s.numpy() for s in earlier]
        terms = self._mixture_terms(params, channel, earlier)
        # The edges: the groups' (shared by every pixel), then the levels' of the pixel's group.
        at = _GROUP_AT if within == 0 else _EDGE_AT[(symbols[-1] << 4)[:, None] + _LEVEL_EDGES]
        out = [self._mixture_cdf(*(term[i:i + PIXEL_CHUNK] for term in terms),
                                 at if within == 0 else at[i:i + PIXEL_CHUNK])
               for i in range(0, max(len(p), 1), PIXEL_CHUNK)]  # no pixels: one empty chunk
        cdf = out[0] if len(out) == 1 else np.concatenate(out)
        return torch.from_numpy(normalize(np.diff(cdf, axis=1)))

    def _mixture_terms(self, params: torch.Tensor, channel: int,
                       earlier: list[torch.Tensor]) -> tuple[np.ndarray, ...]:
        """(weights, their sums, inverse scales at 2^-EXP_BITS, mean terms), (M, m) but the sums
        (M, 1), of one channel's mixture (see `_mixture_cdf`). Both stages of a channel use the
        same, so the last channel's are kept for its second stage, known by the tensors they
        came from (their numpy views are new objects at every call)."""
        key = (params, channel, *earlier[:2 * channel])
        cached = self._terms_cache
        if cached is not None and len(cached[0]) == len(key) and all(a is b for a, b in zip(cached[0], key)):
            return cached[1]
        symbols = [s.numpy() for s in earlier]
        values = [(symbols[2 * e] << 4) + symbols[2 * e + 1] for e in range(channel)]
        logits, means, log_scales = self._channel(params.numpy(), channel, values)
        tables = self._np_tables
        weights = tables["mix_weight"][logits.max(axis=1, keepdims=True) - logits]
        inv_scale = tables["exp"][-log_scales - tables["exp_offset"]]
        mean_term = means * inv_scale - ((L_MAX << T_BITS) << _T_SHIFT)
        terms = (weights, weights.sum(axis=1, keepdims=True), inv_scale, mean_term)
        # The key's arrays are held here, so no later array can be taken for one of them.
        self._terms_cache = (key, terms)
        return terms

    def pixel_log_prob(self, values: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Float log-likelihood (nats) of pixel values under float parameters in their own units."""
        return likelihoods.get(self.cfg).log_prob(values, params)

    def _channel(self, params: np.ndarray, channel: int,
                 values: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(logits, means, log scales), each (M, m), of one channel's mixture, its means moved
        by its coefficients times the values (levels) of the channels before it."""
        m, c = self.cfg.mixtures, self.channels
        base = 3 * m * channel
        logits, means, log_scales = (params[:, base + k * m:base + (k + 1) * m] for k in range(3))
        if channel:
            pull = np.zeros(len(params), dtype=np.int64)
            for k, (target, source) in enumerate(self._pairs):
                if target == channel:
                    pull += params[:, 3 * m * c + k] * (2 * values[source] - 255)
            # coefficient (2^-COEF_BITS) times input (2^-8), brought to 2^-MEAN_BITS.
            means = np.minimum(np.maximum(means + (pull >> (COEF_BITS + 8 - MEAN_BITS))[:, None], -MEAN_MAX), MEAN_MAX)
        return logits, means, log_scales

    @property
    def _pairs(self) -> list[tuple[int, int]]:
        return [(c, e) for c in range(self.channels) for e in range(c)]

    def _mixture_cdf(self, weights: np.ndarray, weight_sum: np.ndarray, inv_scale: np.ndarray,
                     mean_term: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Mixture CDF at 2^-CDF_BITS at edges `at` (`_EDGE_AT`): each logistic's CDF from the
        table at t = (at - mean) * inverse scale, clamped to [-L_MAX, L_MAX], mixed with integer
        weights from the weight table."""
        # mean_term = mean * inverse scale - L_MAX (at the product's scale), so the shift gives
        # t + L_MAX, the table index, and take's clip is the clamp.
        t = at[:, None, :] * inv_scale[:, :, None]
        t -= mean_term[:, :, None]
        t >>= _T_SHIFT
        cdf = np.matmul(weights[:, None, :], self._np_tables["logistic"].take(t, mode="clip"))[:, 0]
        cdf //= weight_sum
        return cdf

    @cached_property
    def _np_tables(self) -> dict[str, np.ndarray]:
        """The lookup tables as numpy arrays (sharing memory with `tables`)."""
        arrays = {k: v.numpy() for k, v in self.tables.items() if v.dim() == 1}
        arrays["exp_offset"] = int(self.tables["exp_offset"].item())
        if arrays["logistic"][0] != 0 or arrays["logistic"][-1] != 1 << CDF_BITS:  # as _EDGE_AT assumes
            raise ValueError("the logistic table must run from exactly 0 to exactly 1")
        return arrays

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
    def load(cls, directory: str | os.PathLike) -> "CodingForm":
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



def pixel_param_bits(cfg) -> torch.Tensor:
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



def file_hash(directory: str | os.PathLike) -> str:
    h = hashlib.sha256()
    for name in FILES:
        h.update((Path(directory) / name).read_bytes())
    return h.hexdigest()

