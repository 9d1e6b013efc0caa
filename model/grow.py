"""Growing a trained VLAE's pixel head (wider, deeper, a wider window) without changing its function.

Hours of training on two cores are worth keeping: a bigger decoder starts from the trained one
instead of from scratch. New hidden units get random incoming and zero outgoing weights, new
1x1 layers start as the identity (exact after a ReLU, whose outputs are >= 0), new window taps
start at zero. So the grown model computes exactly what the trained one did, and training
then has somewhere to put the new capacity.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from . import zoo
from .config import VLAEConfig
from .vlae import VLAE


def grow(model: VLAE, cfg: VLAEConfig, seed: int = 0) -> VLAE:
    """A VLAE of config `cfg` that computes what `model` does; `cfg` may differ from the model's
    only in a larger (or equal) pixel_hidden, pixel_layers, window_rows and window_half_width."""
    old_cfg = model.cfg
    keep = {"pixel_hidden", "pixel_layers", "window_rows", "window_half_width"}
    same = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in keep}
    if same != {k: v for k, v in dataclasses.asdict(old_cfg).items() if k not in keep}:
        raise ValueError("growing changes only pixel_hidden, pixel_layers, window_rows and window_half_width")
    if any(getattr(cfg, k) < getattr(old_cfg, k) for k in keep):
        raise ValueError("a grown model cannot be smaller than the trained one")
    torch.manual_seed(seed)
    new = VLAE(cfg)
    old_sd, sd = model.state_dict(), new.state_dict()
    for name in sd:
        if not name.startswith(("decoder.head.", "decoder.features.to_pixels.")):
            sd[name] = old_sd[name].clone()
    h = old_cfg.pixel_hidden

    # Feature map: output channel k feeds hidden unit k // r^2 (pixel shuffle), r^2 channels each.
    for part in ("weight", "bias"):
        key = f"decoder.features.to_pixels.{part}"
        per_unit = old_sd[key].shape[0] // h
        sd[key].view(cfg.pixel_hidden, per_unit, *sd[key].shape[1:])[:h] = old_sd[key].view(h, per_unit, *old_sd[key].shape[1:])

    # Window: taps are placed relative to the current pixel (last row, centre column).
    w_old, w = old_sd["decoder.head.window.weight"], sd["decoder.head.window.weight"]
    dr, dc = cfg.window_rows - old_cfg.window_rows, cfg.window_half_width - old_cfg.window_half_width
    w[:h] = 0
    w[:h, :, dr:, dc:dc + w_old.shape[3]] = w_old

    # 1x1 layers: the old hidden layers, then identities, then the old output layer.
    n_old, n_new = old_cfg.pixel_layers, cfg.pixel_layers
    for k in range(n_new):
        wk, bk = sd[f"decoder.head.pointwise.{k}.weight"], sd[f"decoder.head.pointwise.{k}.bias"]
        if k < n_old - 1 or k == n_new - 1:
            src = k if k < n_old - 1 else n_old - 1
            w_src, b_src = old_sd[f"decoder.head.pointwise.{src}.weight"], old_sd[f"decoder.head.pointwise.{src}.bias"]
            rows = w_src.shape[0]
            wk[:rows] = 0
            wk[:rows, :h] = w_src
            bk[:rows] = b_src
        else:
            wk.zero_()
            wk[:, :, 0, 0] = torch.eye(cfg.pixel_hidden)
            bk.zero_()
    new.load_state_dict(sd)
    return new


def grow_run(source: str | Path, out: str | Path, cfg: VLAEConfig, seed: int = 0) -> None:
    """A new training run folder `out` that resumes from `source`'s checkpoint, grown to `cfg`:
    model and EMA both start from the grown EMA weights, with a fresh optimizer."""
    source, out = Path(source), Path(out)
    log = json.loads((source / zoo.LOG).read_text())
    old = VLAE(VLAEConfig.from_dict(log["config"]))
    old.load_state_dict(load_file(str(source / "checkpoint" / "ema.safetensors")))
    new = grow(old.eval(), cfg, seed)
    ck = out / "checkpoint"
    if ck.exists():
        raise FileExistsError(f"{ck} exists; choose a new --out")
    ck.mkdir(parents=True)
    weights = {k: v.contiguous() for k, v in new.state_dict().items()}
    save_file(weights, str(ck / "model.safetensors"))
    save_file(weights, str(ck / "ema.safetensors"))
    save_file({}, str(ck / "optimizer.safetensors"))
    state = json.loads((source / "checkpoint" / "state.json").read_text())
    if state["step_in_epoch"]:
        raise ValueError(f"{source} stopped mid-epoch; grow from an epoch's end")
    state["param_groups"] = torch.optim.Adam(new.parameters()).state_dict()["param_groups"]
    state["best_valid"] = None  # the grown model's first epoch sets it
    zoo.write_text_atomic(ck / "state.json", json.dumps(state, indent=1))
    log["config"] = json.loads(cfg.to_json())
    log.setdefault("notes", []).append(
        f"After epoch {state['epoch']} the pixel head was grown (model/grow.py) from {json.dumps(_head(old.cfg))} "
        f"to {json.dumps(_head(cfg))}, keeping the model's function; model and EMA restarted from the grown EMA "
        "weights with a fresh Adam state.")
    zoo.write_text_atomic(out / zoo.LOG, json.dumps(log, indent=1) + "\n")


def _head(cfg: VLAEConfig) -> dict:
    return {k: getattr(cfg, k) for k in ("pixel_hidden", "pixel_layers", "window_rows", "window_half_width")}
