"""Integer layers: weights and activations as integers, sums exact in float64.

Every quantity here is an integer held in a float64 tensor. A layer computes
acc = W_int * a_int + b_int exactly (all partial sums stay far below 2^53, so the
order of summation cannot matter), then rescales by a power of two per output channel
and rounds: out = floor(acc * 2^-shift + 1/2). Multiplying by a power of two and adding
1/2 are exact in float64, so the result is the same integer on any machine, batch size,
thread count or evaluation order.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, replace

import torch
from torch.nn import functional as F

WEIGHT_BITS = 12  # signed weights in [-2047, 2047]
ACT_MAX = 2**15 - 1  # activations are clamped to int16 range
# Bound on any partial sum; checked when a layer is built, so exactness is by construction.
EXACT_LIMIT = 2**52
# A CPU convolution whose output (a transposed one's input) has at most SMALL_MAP positions runs
# as matrix products over GEMM_IMAGES images at a time (`IntLayer._as_products`); on larger maps,
# and on more images at once, the convolution itself was faster.
SMALL_MAP = 64
GEMM_IMAGES = 8


@dataclass
class IntLayer:
    """One integer linear/conv/transposed-conv layer with per-channel power-of-two rescaling."""

    kind: str  # "linear" | "conv" | "conv_transpose"
    weight: torch.Tensor  # float64 holding integers
    bias: torch.Tensor | None  # float64 holding integers, at the accumulator's scale
    scale: torch.Tensor  # float64 powers of two, one per output channel
    stride: int = 1
    padding: int = 0
    lo: float = -ACT_MAX
    hi: float = ACT_MAX

    def accumulate(self, a: torch.Tensor) -> torch.Tensor:
        """The exact integer sum W*a + b, before rescaling."""
        if self.kind == "linear":
            return F.linear(a, self.weight, self.bias)
        if self.kind == "conv" and self.weight.shape[2:] == (1, 1) and self.stride == 1 and self.padding == 0:
            # float64 convolutions are slow on CPU; a 1x1 one is a matrix product over channels.
            return F.linear(a.movedim(1, -1), self.weight.flatten(1), self.bias).movedim(-1, 1)
        if not a.is_cuda and len(a) > 1 and self._small_map(a):
            return self._as_products(a)
        # cuDNN may pick FFT or Winograd algorithms, whose sums are not exact; without it, CUDA
        # convolutions are matrix products, exact like the CPU's.
        with torch.backends.cudnn.flags(enabled=False) if a.is_cuda else nullcontext():
            if self.kind == "conv":
                return F.conv2d(a, self.weight, self.bias, stride=self.stride, padding=self.padding)
            if self.kind == "conv_transpose":
                return F.conv_transpose2d(a, self.weight, self.bias, stride=self.stride, padding=self.padding)
        raise ValueError(self.kind)

    def _out_size(self, size: torch.Size) -> tuple[int, int]:
        """Height and width of the (transposed) convolution's output on a map of `size`."""
        k, s, p = self.weight.shape[2:], self.stride, self.padding
        if self.kind == "conv_transpose":
            return tuple((n - 1) * s - 2 * p + k[i] for i, n in enumerate(size))
        return tuple((n + 2 * p - k[i]) // s + 1 for i, n in enumerate(size))

    def _small_map(self, a: torch.Tensor) -> bool:
        """Whether a convolution's output (a transposed one's input) has at most SMALL_MAP positions."""
        h, w = a.shape[2:] if self.kind == "conv_transpose" else self._out_size(a.shape[2:])
        return min(h, w) > 0 and h * w <= SMALL_MAP

    def _as_products(self, a: torch.Tensor) -> torch.Tensor:
        """The convolution as one matrix product per GEMM_IMAGES images: unfold and multiply (or,
        transposed, multiply and fold). On small maps float64 convolutions make one small
        product per image; these are larger (the posterior's 7x7 layers 0.17 -> 0.10 s per
        1,024 digits, the features' transposed one 0.39 -> 0.28 s). Same integers: the sums
        are exact in any order."""
        k, s, p = self.weight.shape[2:], self.stride, self.padding
        h, w = self._out_size(a.shape[2:])
        parts = []
        for i in range(0, len(a), GEMM_IMAGES):
            x = a[i:i + GEMM_IMAGES]
            if self.kind == "conv":
                cols = F.unfold(x, k, padding=p, stride=s)  # (B, C_in*k*k, h*w)
                out = F.linear(cols.transpose(1, 2), self.weight.flatten(1), self.bias)  # (B, h*w, C_out)
                parts.append(out.transpose(1, 2).reshape(len(x), -1, h, w))
            else:
                cols = x.flatten(2).transpose(1, 2) @ self.weight.flatten(1)  # (B, h_in*w_in, C_out*k*k)
                out = F.fold(cols.transpose(1, 2), (h, w), k, padding=p, stride=s)
                parts.append(out if self.bias is None else out + self.bias.view(1, -1, 1, 1))
        return torch.cat(parts)

    def rescale(self, acc: torch.Tensor) -> torch.Tensor:
        # Channels are last for linear layers and for pixels as rows (2-D), else dimension 1.
        channels_last = self.kind == "linear" or acc.dim() == 2
        shape = (-1,) if channels_last else (1, -1) + (1,) * (acc.dim() - 2)
        # In place: acc is always a fresh result, and these tensors are the bulk of the memory traffic.
        return acc.mul_(self.scale.view(shape)).add_(0.5).floor_().clamp_(self.lo, self.hi)

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        return self.rescale(self.accumulate(a))

    def pointwise(self, a: torch.Tensor) -> torch.Tensor:
        """A 1x1 conv applied to single pixels (M, C): the same integers, as one matrix product."""
        return self.rescale(F.linear(a, self.weight.flatten(1), self.bias))

    def to(self, device: torch.device) -> "IntLayer":
        """A copy whose tensors live on `device`."""
        bias = None if self.bias is None else self.bias.to(device)
        return replace(self, weight=self.weight.to(device), bias=bias, scale=self.scale.to(device))

    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        # Weights fit in int16 (WEIGHT_BITS); stored so, a coding file is a quarter of float64's size.
        weight = self.weight.to(torch.int16)
        if not torch.equal(weight.to(self.weight.dtype), self.weight):
            raise ValueError(f"{prefix}: weights are not integers within int16")
        out = {f"{prefix}.weight": weight, f"{prefix}.scale": self.scale}
        if self.bias is not None:
            out[f"{prefix}.bias"] = self.bias
        return out

    def meta(self) -> dict:
        return {"kind": self.kind, "stride": self.stride, "padding": self.padding,
                "lo": self.lo, "hi": self.hi}

    @classmethod
    def from_saved(cls, prefix: str, tensors: dict[str, torch.Tensor], meta: dict) -> "IntLayer":
        # Older coding files hold the weights as float64; both load to the same float64 integers.
        return cls(weight=tensors[f"{prefix}.weight"].to(torch.float64), bias=tensors.get(f"{prefix}.bias"),
                   scale=tensors[f"{prefix}.scale"], **meta)


def out_channel_dim(kind: str) -> int:
    return 1 if kind == "conv_transpose" else 0


def quantize_layer(kind: str, weight: torch.Tensor, bias: torch.Tensor | None, in_bits: int,
                   out_bits: torch.Tensor, in_max: float, stride: int = 1, padding: int = 0,
                   lo: float = -ACT_MAX, hi: float = ACT_MAX) -> IntLayer:
    """Integer form of a float layer whose input is a_int * 2^-in_bits.

    out_bits gives, per output channel, the fixed-point position of the output
    (out = out_int * 2^-out_bits). Weights get the finest power-of-two scale that
    fits WEIGHT_BITS, per output channel.
    """
    w = weight.detach().double()
    ch = out_channel_dim(kind)
    n_out = w.shape[ch]
    w_ch = w.transpose(0, ch).reshape(n_out, -1)
    max_abs = w_ch.abs().amax(dim=1).clamp_min(1e-30)
    w_bits = torch.floor(torch.log2((2 ** (WEIGHT_BITS - 1) - 1) / max_abs))
    w_bits = w_bits.clamp(-30, 40)
    # A row of zeros (MADE's first output sees no input) has no scale of its own; give it the
    # output's, so that its bias alone does not need a huge accumulator.
    w_bits = torch.where(w_ch.abs().amax(dim=1) == 0, out_bits.double() - in_bits, w_bits)
    shape = [1] * w.dim()
    shape[ch] = -1
    w_int = torch.round(w * torch.exp2(w_bits).view(shape))
    acc_bits = w_bits + in_bits
    b_int = None
    if bias is not None:
        b_int = torch.round(bias.detach().double() * torch.exp2(acc_bits))
    # Worst case partial sum: every weight at its bound times the largest input.
    worst = (w_int.abs().transpose(0, ch).reshape(n_out, -1).sum(dim=1) * in_max).max().item()
    if b_int is not None:
        worst += b_int.abs().max().item()
    if worst >= EXACT_LIMIT:
        raise ValueError(f"layer sums may reach {worst:.3g} >= 2^52; not exact")
    scale = torch.exp2(out_bits.double() - acc_bits)
    return IntLayer(kind, w_int, b_int, scale, stride, padding, lo, hi)


def activation_bits(max_abs: float, headroom: float = 2.0, cap: int = 16) -> int:
    """Finest fixed-point position that keeps headroom * max_abs inside int16."""
    if max_abs <= 0:
        return cap
    return int(min(cap, torch.floor(torch.log2(torch.tensor(ACT_MAX / (headroom * max_abs)))).item()))
