"""The one interface between codec/ and model/: what a coding model gives the codec.

Everything the codec knows of a model is here: the `CodingModel` protocol, the fixed-point
positions of the integers it exchanges (a value v travels as round(v * 2^BITS)), and the
functions that find and load a model by name.
A new model plugs into the codec by implementing `CodingModel`; nothing else in model/ is
imported by codec/ (tests/test_layout.py checks it).

Exactness is the whole contract: every method returns the same integers for the same
integer inputs on any machine, batch size, thread count or device, because the decoder
must rebuild, bit for bit, every frequency table the encoder used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from . import zoo
from .coding import VLAECodingModel
from .errors import ModelError
from .form import network_device
from .fixed_point import CDF_BITS, EXP_BITS, LOG_BITS, OFFSET_BITS, OFFSET_MAX, T_BITS, Z_BITS
from .zoo import ModelNotFound

__all__ = ["CDF_BITS", "EXP_BITS", "LOG_BITS", "OFFSET_BITS", "OFFSET_MAX", "T_BITS", "Z_BITS",
           "CodingModel", "Geometry", "ModelError", "ModelNotFound", "PixelFeatures", "load_coding_model",
           "network_device", "resolve_model", "shipped_models"]

class Geometry(Protocol):
    """The images a model codes."""

    height: int  # with block == 0, the only image size the model codes
    width: int
    channels: int  # 1 or 3
    block: int  # side of the pixel block each code covers; 0 for one global code per image
    likelihood: str  # "bernoulli" (binary pixels) or an 8-bit distribution


class PixelFeatures(Protocol):
    """The per-pixel features of N images' codes."""

    n: int  # images

    def at(self, rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:
        """Features (len(rows) * N, F) of pixels (rows[i], cols[i]), position-major, image-minor."""

    def whole(self) -> torch.Tensor:
        """The whole map (N, F, H, W)."""


class CodingModel(Protocol):
    """An exact integer probability model of images x with latent codes z, as the codec uses it.

    Tensors are int64 on the CPU unless said otherwise; N images, K codes per image (one, or
    one per block of a grid: `code_grid`), D dimensions per code, P pixel parameters.

    Latents. `posterior(x)` gives q(z|x) as a diagonal Gaussian; `prior_conditionals(z)` gives
    every p(z_i | z_<i) as a Gaussian in one fixed order (`prior_conditional(z, i)` one of them). The codec discretizes z_i into the
    equal-mass bins of its prior conditional: `lossless_bins` (bits-back) or `lossy_bins`
    (lossy mode, and divided by 2^shift, `clean_bins(shift)`, for the clean start) per
    dimension, with `bin_edges`/`bin_centers` of N(0, 1), `exp` and `gaussian_cdf` as exact
    lookup tables.

    Pixels. `features(z, height, width)` once per image; then `pixel_params(x, features)` for
    whole images, or `pixel_params_at(windows, features)` for single pixels from their causal
    windows (coding along wavefronts), with the features from `pixel_features(z, height,
    width).at(rows, cols)`, which makes them as they are asked for. The window of the pixel at
    (y, x) holds `input` of the pixels at (y + dy[t], x + dx[t]) for every tap t: at most `rows`
    rows above and `half` columns either side, pixels outside the image being 0. Pixels whose
    windows are all known can be decoded at one step. A pixel is `pixel_stages` symbols;
    `pixel_freqs(params, stage, earlier)` is the frequency table of one stage given the symbols
    of the stages before it, each row summing to 2^ans.PRECISION with no entry 0.
    """

    cfg: Geometry
    channels: int
    rows: int
    half: int
    dy: np.ndarray
    dx: np.ndarray
    lossless_bins: list[int]
    lossy_bins: list[int]

    @property
    def bit_depth(self) -> int:
        """Bits per channel: 1 (binary) or 8."""

    @property
    def pixel_stages(self) -> int:
        """Symbols per pixel."""

    @property
    def param_bits(self) -> torch.Tensor:
        """Fixed-point position of each pixel parameter (P,)."""

    @property
    def weights_hash(self) -> str:
        """Hex digest identifying the coding form; a file records it."""

    def to(self, device: str | torch.device) -> CodingModel:
        """A copy whose networks run on `device` (same integers; see `network_device`)."""

    def with_offsets(self, offsets: torch.Tensor | None) -> CodingModel:
        """A copy whose pixel parameters are moved by `offsets` (P,) at 2^-OFFSET_BITS."""

    def clean_bins(self, shift: int) -> list[int]:
        """`lossy_bins` divided by 2^shift (at least 1); ValueError without tables for them."""

    def code_grid(self, height: int, width: int) -> tuple[int, int]:
        """Rows and columns of an image's grid of codes; (1, 1) for a global code."""

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu at 2^-Z_BITS, log sigma at 2^-LOG_BITS) of q(z|x), (N, K, D) each, for images
        (N, C, H, W) of pixel values; codes in raster order of the grid."""

    def prior_conditionals(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(shift at 2^-Z_BITS, log scale at 2^-LOG_BITS) of every p(z_i | z_<i) for codes
        (..., D); entry i does not depend on z_>=i."""

    def prior_conditional(self, z: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Entry i of `prior_conditionals(z)` alone, (...,) each: a walk over the dimensions
        asks for one conditional at a time, and need not pay for all of them."""

    def exp(self, log_value: torch.Tensor) -> torch.Tensor:
        """exp of values at 2^-LOG_BITS, at 2^-EXP_BITS."""

    def gaussian_cdf(self, t: torch.Tensor) -> torch.Tensor:
        """Phi of t at 2^-T_BITS, at 2^-CDF_BITS."""

    def bin_edges(self, k: int) -> torch.Tensor:
        """Inner edges of K equal-mass bins of N(0, 1) (K - 1,), at 2^-Z_BITS."""

    def bin_centers(self, k: int) -> torch.Tensor:
        """Where each of K equal-mass bins of N(0, 1) puts its z (K,), at 2^-Z_BITS."""

    def features(self, z: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Per-pixel features of codes (N, K, D): (N, F, height, width)."""

    def pixel_features(self, z: torch.Tensor, height: int, width: int) -> PixelFeatures:
        """The features of codes (N, K, D), by position; memory need not grow with the image's area."""

    def pixel_params(self, x: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Parameters of every pixel of whole images (N, C, H, W): (N, P, H, W)."""

    def pixel_params_at(self, windows: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Parameters (M, P) of single pixels from their windows (M, taps * C), tap-major, and
        their features (M, F); both integer tensors of any dtype that holds them."""

    def input(self, x: torch.Tensor) -> torch.Tensor:
        """Pixel values as the network inputs a window holds: float64 integers within +-255
        (the codec keeps them as int16)."""

    def pixel_symbols(self, values: torch.Tensor) -> list[torch.Tensor]:
        """The symbols of each stage for pixel values (M, C)."""

    def pixel_value(self, symbols: list[torch.Tensor]) -> torch.Tensor:
        """Pixel values (M, C) from the symbols of all stages."""

    def pixel_mean(self, params: torch.Tensor) -> torch.Tensor:
        """Each pixel's mean level (M, C) (binary: its most likely value); the lossy decoder's image."""

    def pixel_freqs(self, params: torch.Tensor, stage: int, earlier: list[torch.Tensor]) -> torch.Tensor:
        """Frequency tables (M, K) of one stage of M pixels given their parameters (M, P)."""

    def pixel_log_prob(self, values: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Float log-likelihood in nats of pixel values (N, C, H, W) under float parameters
        (N, P, H, W) in their own units (integers / 2^param_bits), differentiable in params.
        Only the encoder's fitting uses it, so it need not be exact."""


def shipped_models() -> list[str]:
    """Names of the models inside the package."""
    return zoo.shipped_models()


def resolve_model(name_or_dir: str | os.PathLike) -> Path:
    """Folder of a model: a shipped name, or a folder with weights and config; else ModelNotFound."""
    return zoo.resolve(name_or_dir)


def load_coding_model(directory: str | os.PathLike) -> CodingModel:
    """The coding form stored in a model folder (coding.safetensors + coding.json)."""
    return VLAECodingModel.load(directory)
