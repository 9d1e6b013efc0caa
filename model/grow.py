"""Growing a trained VLAE's pixel head (wider, deeper, a wider window) without changing its function.

Hours of training on two cores are worth keeping: a bigger decoder starts from the trained one
instead of from scratch. New hidden units get small random incoming and zero outgoing weights,
new 1x1 layers start as the identity (exact after a ReLU, whose outputs are >= 0), new window
taps start at zero. So the grown model computes exactly what the trained one did, and training
then has somewhere to put the new capacity.

Measured on the cifar run (25 steps after growing at epoch 17, training -ELBO 4.00 before):
wider only (128 -> 192 units) 4.007; with a third 1x1 layer 4.057; with a 5-row, +-5 window
4.068. Width joins in quietly; new layers and taps shake the trained weights first.
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

# New units start with their default random weights times this: quiet units whose outgoing
# weights (zero at first) get small gradients, so that they join in gradually.
NEW_SCALE = 0.1


def grow(model: VLAE, cfg: VLAEConfig, seed: int = 0) -> VLAE:
    """A VLAE of config `cfg` that computes what `model` does; `cfg` may differ from the model's
    only in a larger (or equal) pixel_hidden, pixel_layers, window_rows and window_half_width."""
    _check(model.cfg, cfg)
    torch.manual_seed(seed)
    new = VLAE(cfg)
    sd = new.state_dict()
    for name, t in sd.items():
        if name.startswith(("decoder.head.", "decoder.features.to_pixels.")):
            t.mul_(NEW_SCALE)
    _embed(model.state_dict(), sd, model.cfg, cfg, weights=True)
    new.load_state_dict(sd)
    return new


def _check(old_cfg: VLAEConfig, cfg: VLAEConfig) -> None:
    keep = {"pixel_hidden", "pixel_layers", "window_rows", "window_half_width"}
    same = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in keep}
    if same != {k: v for k, v in dataclasses.asdict(old_cfg).items() if k not in keep}:
        raise ValueError("growing changes only pixel_hidden, pixel_layers, window_rows and window_half_width")
    if any(getattr(cfg, k) < getattr(old_cfg, k) for k in keep):
        raise ValueError("a grown model cannot be smaller than the trained one")


def _embed(old: dict[str, torch.Tensor], new: dict[str, torch.Tensor], old_cfg: VLAEConfig, cfg: VLAEConfig,
           weights: bool) -> None:
    """Write each old tensor (weights, or Adam moments of the weights) into its place in the
    grown tensor of the same name, in place; everything else keeps what `new` holds, except
    that for weights the old units' links to new units and taps become zero and inserted 1x1
    layers the identity."""
    for name in new:
        if not name.startswith(("decoder.head.", "decoder.features.to_pixels.")):
            new[name] = old[name].clone()
    h = old_cfg.pixel_hidden

    # Feature map: output channel k feeds hidden unit k // r^2 (pixel shuffle), r^2 channels each.
    for part in ("weight", "bias"):
        key = f"decoder.features.to_pixels.{part}"
        per_unit = old[key].shape[0] // h
        new[key].view(cfg.pixel_hidden, per_unit, *new[key].shape[1:])[:h] = old[key].view(h, per_unit, *old[key].shape[1:])

    # Window: taps are placed relative to the current pixel (last row, centre column).
    w_old, w = old["decoder.head.window.weight"], new["decoder.head.window.weight"]
    dr, dc = cfg.window_rows - old_cfg.window_rows, cfg.window_half_width - old_cfg.window_half_width
    if weights:
        w[:h] = 0
    w[:h, :, dr:, dc:dc + w_old.shape[3]] = w_old

    # 1x1 layers: the old hidden layers, then inserted ones, then the old output layer.
    n_old, n_new = old_cfg.pixel_layers, cfg.pixel_layers
    for k in range(n_new):
        wk, bk = new[f"decoder.head.pointwise.{k}.weight"], new[f"decoder.head.pointwise.{k}.bias"]
        if k < n_old - 1 or k == n_new - 1:
            src = k if k < n_old - 1 else n_old - 1
            w_src, b_src = old[f"decoder.head.pointwise.{src}.weight"], old[f"decoder.head.pointwise.{src}.bias"]
            rows = w_src.shape[0]
            if weights:
                wk[:rows] = 0
            wk[:rows, :h] = w_src
            bk[:rows] = b_src
        elif weights:
            wk.zero_()
            bk.zero_()
            wk[:, :, 0, 0] = torch.eye(cfg.pixel_hidden)


def grow_run(source: str | Path, out: str | Path, cfg: VLAEConfig, seed: int = 0) -> None:
    """A new training run folder `out` that resumes from `source`'s checkpoint, grown to `cfg`.
    Model and EMA both start from the grown EMA weights; Adam's moments of the old weights carry
    over (a fresh Adam's first steps, a full learning rate on every weight at once, knocked the
    trained CIFAR model from 4.0 to 4.8 bits/dim). A new weight starts with no momentum and with
    the mean second moment of its tensor (of the first 1x1 layer, for an inserted layer): with a
    zero second moment its first steps would be several times the learning rate, which sent the
    grown model to 5.7 bits/dim within 20 steps."""
    source, out = Path(source), Path(out)
    log = json.loads((source / zoo.LOG).read_text())
    old = VLAE(VLAEConfig.from_dict(log["config"]))
    _check(old.cfg, cfg)
    old.load_state_dict(load_file(str(source / "checkpoint" / "ema.safetensors")))
    new = grow(old.eval(), cfg, seed)
    state = json.loads((source / "checkpoint" / "state.json").read_text())
    if state["step_in_epoch"]:
        raise ValueError(f"{source} stopped mid-epoch; grow from an epoch's end")
    moments = _grown_moments(load_file(str(source / "checkpoint" / "optimizer.safetensors")), old, new)
    ck = out / "checkpoint"
    if ck.exists():
        raise FileExistsError(f"{ck} exists; choose a new --out")
    ck.mkdir(parents=True)
    weights = {k: v.contiguous() for k, v in new.state_dict().items()}
    save_file(weights, str(ck / "model.safetensors"))
    save_file(weights, str(ck / "ema.safetensors"))
    save_file(moments, str(ck / "optimizer.safetensors"))
    groups = torch.optim.Adam(new.parameters()).state_dict()["param_groups"]
    state["param_groups"] = [{**g, **{k: v for k, v in old_g.items() if k != "params"}}
                             for g, old_g in zip(groups, state["param_groups"])]
    state["best_valid"] = None  # the grown model's first epoch sets it
    zoo.write_text_atomic(ck / "state.json", json.dumps(state, indent=1))
    log["config"] = json.loads(cfg.to_json())
    log.setdefault("notes", []).append(
        f"After epoch {state['epoch']} the pixel head was grown (model/grow.py) from {json.dumps(_head(old.cfg))} "
        f"to {json.dumps(_head(cfg))}, keeping the model's function; model and EMA restarted from the grown EMA "
        "weights, with Adam's moments carried over for the old weights.")
    zoo.write_text_atomic(out / zoo.LOG, json.dumps(log, indent=1) + "\n")


def _grown_moments(flat: dict[str, torch.Tensor], old: VLAE, new: VLAE) -> dict[str, torch.Tensor]:
    """Adam's state (saved as "INDEX.NAME", parameters in model order) for the grown model."""
    old_names = [n for n, _ in old.named_parameters()]
    new_params = dict(new.named_parameters())
    steps = {k: v for k, v in flat.items() if k.endswith(".step")}
    out = {}
    for moment in ("exp_avg", "exp_avg_sq"):
        by_name = {old_names[int(k.split(".")[0])]: v for k, v in flat.items() if k.endswith("." + moment)}
        inserted = by_name["decoder.head.pointwise.0.weight"].mean()
        grown = {n: torch.full_like(p, 0.0 if moment == "exp_avg" else float(by_name.get(n, inserted).mean()))
                 for n, p in new_params.items()}
        _embed(by_name, grown, old.cfg, new.cfg, weights=False)
        out.update({f"{i}.{moment}": grown[n].contiguous() for i, n in enumerate(new_params)})
    step = next(iter(steps.values()))
    out.update({f"{i}.step": step.clone() for i in range(len(new_params))})
    return out


def _head(cfg: VLAEConfig) -> dict:
    return {k: getattr(cfg, k) for k in ("pixel_hidden", "pixel_layers", "window_rows", "window_half_width")}
