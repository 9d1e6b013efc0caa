"""A second, independent implementation of the coding model's probabilities, for tests only.

It reads the stored coding form (coding.safetensors + coding.json) with numpy, not torch,
and computes everything in int64: integer matrix products, convolutions written out as
sums over kernel taps, rescaling as arithmetic shifts. It shares no code with
`model/coding.py`, `model/quantize.py` or `codec/`, only the documented fixed-point format.
The lookup tables are part of the stored model, so both implementations read the same ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from safetensors.numpy import load_file

# The fixed-point format, as documented in model/fixed_point.py.
PRECISION = 24
Z_BITS, LOG_BITS, LOGIT_BITS, MEAN_BITS = 12, 10, 8, 12
EXP_BITS, CDF_BITS, T_BITS = 24, 30, 10
LOGIT_MAX, MEAN_MAX, Z_MAX = 16 << LOGIT_BITS, 2 << MEAN_BITS, 16 << Z_BITS
COEF_BITS = 12
COEF_MAX = 4 << COEF_BITS
T_MAX, L_MAX = 8, 24
ACT_MAX = 2**15 - 1
# Clamps of the log widths (nats): posterior sigma, prior scale, logistic scale.
LOG_SIGMA_RANGE, LOG_SCALE_RANGE = (-9 << LOG_BITS, 2 << LOG_BITS), (-7 << LOG_BITS, 3 << LOG_BITS)
LEVELS = 256


def _int(a: np.ndarray) -> np.ndarray:
    out = a.astype(np.int64)
    assert np.array_equal(out, a), "stored integers must be whole"
    return out


class Layer:
    """One stored integer layer: weights, bias, per-channel power-of-two rescale and clamp."""

    def __init__(self, name: str, tensors: dict, meta: dict):
        self.kind, self.stride, self.padding = meta["kind"], meta["stride"], meta["padding"]
        self.lo, self.hi = int(meta["lo"]), int(meta["hi"])
        self.weight = _int(tensors[f"{name}.weight"])
        bias = tensors.get(f"{name}.bias")
        self.bias = None if bias is None else _int(bias)
        mantissa, exponent = np.frexp(tensors[f"{name}.scale"])
        assert np.all(mantissa == 0.5), "scales must be powers of two"
        self.shift = 1 - exponent.astype(np.int64)  # scale = 2^-shift

    def __call__(self, a: np.ndarray) -> np.ndarray:
        if self.kind == "linear":
            acc = a @ self.weight.T
        elif self.kind == "conv":
            acc = conv2d(a, self.weight, self.stride, self.padding)
        else:
            acc = conv_transpose2d(a, self.weight, self.stride, self.padding)
        channel = (1, -1) + (1,) * (acc.ndim - 2)
        if self.bias is not None:
            acc = acc + self.bias.reshape(channel)
        return rescale(acc, self.shift.reshape(channel)).clip(self.lo, self.hi)


def rescale(acc: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """round(acc * 2^-shift), halves rounded up, by integer shifts."""
    right = np.maximum(shift, 0)
    half = np.where(right > 0, np.left_shift(1, np.maximum(right - 1, 0)), 0)
    return np.where(shift > 0, (acc + half) >> right, acc << np.maximum(-shift, 0))


def conv2d(a: np.ndarray, w: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """(N, C, H, W) x (O, C, kh, kw) -> (N, O, H', W'), as a sum over taps."""
    a = np.pad(a, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kh, kw = w.shape[2:]
    windows = sliding_window_view(a, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("nchwij,ocij->nohw", windows, w)


def conv_transpose2d(a: np.ndarray, w: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """(N, C, H, W) x (C, O, kh, kw) -> (N, O, H', W'): each input pixel spreads its kernel."""
    n, _, h, wd = a.shape
    kh, kw = w.shape[2:]
    full = np.zeros((n, w.shape[1], (h - 1) * stride + kh, (wd - 1) * stride + kw), np.int64)
    for i in range(kh):
        for j in range(kw):
            full[:, :, i:i + stride * h:stride, j:j + stride * wd:stride] += np.einsum("nchw,co->nohw", a, w[:, :, i, j])
    return full[:, :, padding:full.shape[2] - padding, padding:full.shape[3] - padding]


def pixel_shuffle(a: np.ndarray, r: int) -> np.ndarray:
    """(N, C*r*r, h, w) -> (N, C, r*h, r*w): channel c*r*r + i*r + j goes to offset (i, j) of each r x r block."""
    n, crr, h, w = a.shape
    return a.reshape(n, crr // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, crr // (r * r), r * h, r * w)


def normalize(mass: np.ndarray) -> np.ndarray:
    """Masses -> frequencies >= 1 summing to 2^PRECISION; leftovers go to the first largest."""
    k = mass.shape[-1]
    total = np.maximum(mass.sum(axis=-1, keepdims=True), 1)
    freqs = 1 + (mass * ((1 << PRECISION) - k)) // total
    rows = np.arange(len(freqs))
    freqs[rows, mass.argmax(axis=-1)] += (1 << PRECISION) - freqs.sum(axis=-1)
    return freqs


class Reference:
    """The coding model's networks and distributions, from its stored files."""

    def __init__(self, directory: str | Path):
        directory = Path(directory)
        meta = json.loads((directory / "coding.json").read_text())
        tensors = load_file(str(directory / "coding.safetensors"))
        self.cfg = meta["config"]
        self.layers = {name: Layer(name, tensors, m) for name, m in meta["layers"].items()}
        self.tables = {k[len("table."):]: v.astype(np.int64) for k, v in tensors.items() if k.startswith("table.")}
        self.binary = self.cfg["likelihood"] == "bernoulli"
        self.block = self.cfg.get("block", 0)
        self.channels = self.cfg["channels"]

    def _exp(self, log_value: np.ndarray) -> np.ndarray:
        return self.tables["exp"][log_value - self.tables["exp_offset"][0]]

    def input(self, x: np.ndarray) -> np.ndarray:
        return x.astype(np.int64) if self.binary else 2 * x.astype(np.int64) - 255

    def posterior(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mu, log_sigma) of q(z|x) for images (N, C, H, W): (N, K, D) each, K codes per image."""
        a = self.input(x)
        d = self.cfg["latent_dim"]
        if self.block:
            b = self.block
            a = np.pad(a, ((0, 0), (0, 0), (0, -a.shape[2] % b), (0, -a.shape[3] % b)), mode="edge")
            for k in range(7):
                a = self.layers[f"enc.{k}"](a)
            out = a.reshape(len(a), 2 * d, -1).transpose(0, 2, 1)  # codes in raster order of the grid
        else:
            for k in range(4):
                a = self.layers[f"enc.{k}"](a)
            out = self.layers["enc.5"](self.layers["enc.4"](a.reshape(len(a), -1)))[:, None, :]
        return out[..., :d].clip(-Z_MAX, Z_MAX), out[..., d:].clip(*LOG_SIGMA_RANGE)

    def prior_conditionals(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Conditionals of codes given as rows (M, D)."""
        a = z.astype(np.int64)
        for k in range(len(self.cfg["made_hidden"]) + 1):
            a = self.layers[f"made.{k}"](a)
        d = self.cfg["latent_dim"]
        return a[:, :d].clip(-Z_MAX, Z_MAX), a[:, d:].clip(*LOG_SCALE_RANGE)

    def features(self, z: np.ndarray, height: int, width: int) -> np.ndarray:
        """Feature map (N, hidden, H, W) of codes (N, K, D)."""
        z = z.astype(np.int64)
        if self.block:
            b = self.block
            rows, cols = -(-height // b), -(-width // b)
            a = z.transpose(0, 2, 1).reshape(len(z), -1, rows, cols)
            a = self.layers["feat.to_pixels"](self.layers["feat.hidden"](self.layers["feat.mix"](a)))
            return pixel_shuffle(a, b)[:, :, :height, :width]
        c, h, w = self.cfg["feature_channels"], self.cfg["height"] // 4, self.cfg["width"] // 4
        a = self.layers["feat.up"](self.layers["feat.linear"](z[:, 0]).reshape(len(z), c, h, w))
        return pixel_shuffle(self.layers["feat.to_pixels"](a), 2)

    def pixel_params(self, x: np.ndarray, features: np.ndarray) -> np.ndarray:
        rows, half = self.cfg["window_rows"], self.cfg["window_half_width"]
        xp = np.pad(self.input(x), ((0, 0), (0, 0), (rows, 0), (half, half)))
        h = (self.layers["head.window"](xp) + features).clip(0, ACT_MAX)
        for k in range(self.cfg["pixel_layers"]):
            h = self.layers[f"head.pw.{k}"](h)
        if self.binary:
            return h.clip(-LOGIT_MAX, LOGIT_MAX)
        m = self.cfg["mixtures"]
        parts = []
        for c in range(self.channels):
            base = 3 * m * c
            parts += [h[:, base:base + m].clip(-LOGIT_MAX, LOGIT_MAX), h[:, base + m:base + 2 * m].clip(-MEAN_MAX, MEAN_MAX),
                      h[:, base + 2 * m:base + 3 * m].clip(*LOG_SCALE_RANGE)]
        parts.append(h[:, 3 * m * self.channels:].clip(-COEF_MAX, COEF_MAX))
        return np.concatenate(parts, axis=1)

    def pixel_freqs(self, params: np.ndarray, values: np.ndarray) -> list[np.ndarray]:
        """Frequency tables of every stage for pixels with parameters (M, P) and values (M, C):
        each channel's group of 16 levels, then its level in the group."""
        if self.binary:
            one = self.tables["sigmoid"][params[:, 0] + LOGIT_MAX]
            return [np.stack([(1 << PRECISION) - one, one], axis=-1)]
        m, out = self.cfg["mixtures"], []
        pairs = [(c, e) for c in range(self.channels) for e in range(c)]
        for c in range(self.channels):
            logits, means, log_scales = (params[:, 3 * m * c + k * m:3 * m * c + (k + 1) * m] for k in range(3))
            pull = np.zeros(len(params), np.int64)
            for k, (target, source) in enumerate(pairs):
                if target == c:
                    pull += params[:, 3 * m * self.channels + k] * (2 * values[:, source] - 255)
            if c:
                means = (means + (pull >> (COEF_BITS + 8 - MEAN_BITS))[:, None]).clip(-MEAN_MAX, MEAN_MAX)
            v = values[:, c]
            for first, step in ((np.zeros_like(v), 16), ((v >> 4) << 4, 1)):
                edges = first[:, None] + step * np.arange(17)[None, :]
                out.append(normalize(np.diff(self._mixture_cdf(logits, means, log_scales, edges), axis=1)))
        return out

    def _mixture_cdf(self, logits: np.ndarray, means: np.ndarray, log_scales: np.ndarray,
                     edges: np.ndarray) -> np.ndarray:
        weights = self.tables["mix_weight"][logits.max(axis=1, keepdims=True) - logits]
        inv_scale = self._exp(-log_scales)
        at = (edges - 128) * (1 << (MEAN_BITS - 7))
        t = ((at[:, None, :] - means[:, :, None]) * inv_scale[:, :, None]) >> (MEAN_BITS + EXP_BITS - T_BITS)
        lim = L_MAX << T_BITS
        cdf = (weights[:, :, None] * self.tables["logistic"][t.clip(-lim, lim) + lim]).sum(axis=1)
        cdf = cdf // weights.sum(axis=1, keepdims=True)
        cdf[edges <= 0] = 0
        cdf[edges >= LEVELS] = 1 << CDF_BITS
        return cdf

    def posterior_freqs(self, shift: np.ndarray, log_scale: np.ndarray, mu: np.ndarray, log_sigma: np.ndarray,
                        k: int) -> np.ndarray:
        """q(z_i|x) on the K equal-mass bins of p(z_i|z_<i), as frequencies."""
        edges = (shift[:, None] << EXP_BITS) + self._exp(log_scale)[:, None] * self.tables[f"edges.{k}"][None, :]
        t = (edges - (mu[:, None] << EXP_BITS)) // (self._exp(log_sigma)[:, None] << (Z_BITS - T_BITS))
        lim = T_MAX << T_BITS
        cdf = self.tables["phi"][t.clip(-lim, lim) + lim]
        n = len(shift)
        cdf = np.concatenate([np.zeros((n, 1), np.int64), cdf, np.full((n, 1), 1 << CDF_BITS)], axis=1)
        return normalize(np.diff(cdf, axis=1))
