"""A trained VLAE as the starting point of another run: its weights as they are, or a colour model as a greyscale one.

A colour model given an image whose three channels are equal computes, for the red channel,
a distribution of a greyscale pixel given the greyscale pixels before it. The greyscale model
built here computes exactly that: input weights are summed over the colour channels (the
inputs are equal) and the output keeps the red channel's parameters. Training on greyscale
images then starts from a working model instead of from scratch.
"""

from __future__ import annotations

import dataclasses

import torch

from . import likelihoods
from .config import VLAEConfig
from .vlae import VLAE

# The layers that read pixels (the encoder's first convolution, the pixel head's window).
_INPUT_LAYERS = ("encoder.convs.0.weight", "decoder.head.window.weight")
# Fields that may differ between the two models: the training size and notes.
_FREE = {"height", "width", "extra"}


def start_from(source: VLAE, cfg: VLAEConfig) -> VLAE:
    """A VLAE of config `cfg` with `source`'s weights; `cfg` may have 1 channel where `source` has 3."""
    old = source.cfg
    same = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _FREE | {"channels"}}
    if same != {k: v for k, v in dataclasses.asdict(old).items() if k not in _FREE | {"channels"}}:
        raise ValueError("the model to start from has another architecture; only the channels (3 -> 1) "
                         "and the training size may differ")
    sd = {k: v.clone() for k, v in source.state_dict().items()}
    if cfg.channels != old.channels:
        if (old.channels, cfg.channels) != (3, 1) or cfg.likelihood != "logistic_mixture":
            raise ValueError(f"cannot start a {cfg.channels}-channel model from a {old.channels}-channel one")
        for key in _INPUT_LAYERS:
            sd[key] = sd[key].sum(dim=1, keepdim=True)
        last = f"decoder.head.pointwise.{old.pixel_layers - 1}"
        keep = likelihoods.get(cfg).n_params  # the first channel's logits, means and log scales come first
        sd[f"{last}.weight"] = sd[f"{last}.weight"][:keep]
        sd[f"{last}.bias"] = sd[f"{last}.bias"][:keep]
    model = VLAE(cfg)
    model.load_state_dict(sd)
    return model


@torch.no_grad()
def check_grey_equivalence(colour: VLAE, grey: VLAE, x: torch.Tensor) -> float:
    """Largest difference between the greyscale model's log-likelihood of greyscale images x
    (N, 1, H, W) and the colour model's red-channel log-likelihood of (x, x, x), same z."""
    xf = grey.x_in(x)
    mu, _ = grey.encoder(xf)
    grey_ll = grey.likelihood.log_prob(x, grey.decoder(mu, xf))
    x3 = x.repeat(1, 3, 1, 1)
    params = colour.decoder(mu, colour.x_in(x3))
    m = colour.cfg.mixtures
    red = likelihoods.get(grey.cfg).log_prob(x, params[:, :3 * m])
    return float((grey_ll - red).abs().max())
