"""Training: maximize the ELBO with Adam, an EMA of the weights, KL warm-up and resumable checkpoints."""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from . import data, distributed, transplant, zoo
from .config import PRESETS, VLAEConfig
from .folder import ImageFolder
from .vlae import VLAE

LOG2 = math.log(2)
CURVE_EVERY = 50  # steps between points of the logged loss curve


@dataclass
class TrainOptions:
    """Optimisation settings; stored in the log and the checkpoint so a resume continues alike."""

    epochs: int = 60
    batch_size: int = 128
    lr: float = 1e-3
    lr_decay: float = 0.97  # per epoch
    warmup_epochs: float = 0.0  # KL weight rises linearly from 0.2 to 1 over these
    # Free bits: the batch's mean KL is not penalized below this many bits per image, so the
    # code gets used before the local decoder learns to do without it. Held for the first
    # `free_bits_hold` of the epochs, then faded to 0 by `free_bits_end`: the end is pure ELBO.
    free_bits: float = 16.0
    free_bits_hold: float = 0.4
    free_bits_end: float = 0.6
    ema: float = 0.999
    grad_clip: float = 200.0
    seed: int = 0
    checkpoint_minutes: float = 5.0
    # "bf16": the forward pass under bfloat16 autocast (the ELBO's own terms stay float32);
    # "auto" picks it on CUDA and on CPUs with native bfloat16 (an epoch 1.35x as fast on 2 Zen 4 cores).
    precision: str = "auto"
    max_steps: int | None = None  # stop early (tests, smoke runs)
    # Training on a folder of pictures: crops of crop x crop pixels, epoch_crops of them per epoch.
    crop: int = 64
    epoch_crops: int = 4096


def free_bits_nats(opts: TrainOptions, epoch: float) -> float:
    """The KL floor at a (fractional) epoch, in nats per image."""
    hold, end = opts.free_bits_hold * opts.epochs, opts.free_bits_end * opts.epochs
    fade = 1.0 if epoch <= hold else max(0.0, (end - epoch) / max(end - hold, 1e-9))
    return opts.free_bits * LOG2 * fade


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether a precision setting ("auto", "bf16" or "fp32") trains under bfloat16 autocast here."""
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"unknown precision {precision!r} (use auto, bf16 or fp32)")
    if precision == "auto":
        return device.type == "cuda" or (device.type == "cpu" and _cpu_has_bf16())
    return precision == "bf16"


def _cpu_has_bf16() -> bool:
    # torch has no public query for native bfloat16 on the CPU; its oneDNN backend's is private.
    try:
        return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _ckpt_dir(out: Path) -> Path:
    return out / "checkpoint"


def _save_checkpoint(out: Path, model: VLAE, ema: VLAE, opt: torch.optim.Optimizer, state: dict) -> None:
    """Everything needed to resume, as safetensors + JSON (no pickles)."""
    ck = _ckpt_dir(out)
    ck.mkdir(parents=True, exist_ok=True)
    opt_state = opt.state_dict()
    tensors = {}
    for idx, st in opt_state["state"].items():
        for key, val in st.items():
            tensors[f"{idx}.{key}"] = val.detach().clone().reshape(val.shape).contiguous()
    for name, mod in (("model", model), ("ema", ema)):
        tmp = ck / f"{name}.safetensors.tmp"
        save_file({k: v.contiguous() for k, v in mod.state_dict().items()}, str(tmp))
        os.replace(tmp, ck / f"{name}.safetensors")
    tmp = ck / "optimizer.safetensors.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, ck / "optimizer.safetensors")
    state = dict(state, param_groups=opt_state["param_groups"])
    zoo.write_text_atomic(ck / "state.json", json.dumps(state, indent=1))


def _load_checkpoint(out: Path, model: VLAE, ema: VLAE, opt: torch.optim.Optimizer) -> dict:
    ck = _ckpt_dir(out)
    model.load_state_dict(load_file(str(ck / "model.safetensors")))
    ema.load_state_dict(load_file(str(ck / "ema.safetensors")))
    state = json.loads((ck / "state.json").read_text())
    flat = load_file(str(ck / "optimizer.safetensors"))
    opt_state: dict = {"state": {}, "param_groups": state.pop("param_groups")}
    for key, val in flat.items():
        idx, name = key.split(".", 1)
        opt_state["state"].setdefault(int(idx), {})[name] = val
    opt.load_state_dict(opt_state)
    return state


@torch.no_grad()
def evaluate_elbo(model: VLAE, images: np.ndarray, batch_size: int = 500, device: torch.device | None = None) -> dict:
    """Mean one-sample negative ELBO and KL (nats/image) over uint8 images."""
    totals = {"neg_elbo": 0.0, "kl": 0.0, "recon": 0.0}
    for start in range(0, len(images), batch_size):
        x = data.to_tensor(images[start:start + batch_size]).to(device or "cpu")
        terms = model.elbo_terms(x)
        for k in totals:
            totals[k] += terms[k].sum().item()
    return {k: v / len(images) for k, v in totals.items()}


def train(dataset: str | None, out: str | os.PathLike, data_dir: str | None = None,
          cfg: VLAEConfig | None = None, opts: TrainOptions | dict | None = None,
          resume: bool = False, progress: bool = True, device: str | None = None,
          images: str | os.PathLike | None = None, init: str | None = None) -> dict:
    """Train a VLAE on a named data set, or on random crops of a folder of `images` (the preset
    `dataset` names the architecture); writes checkpoints, the best EMA model and train_log.json.
    `init` (a model name or folder) gives the starting weights (model/transplant.py). A resumed
    run keeps its saved options but for those `opts` changes: a dict of them, or the fields of
    a TrainOptions that differ from the defaults.

    Under torchrun, each of the W processes takes every W-th image of each batch and
    DistributedDataParallel averages the gradients, so the run follows the same global batch
    as one process; rank 0 alone evaluates and writes. With bfloat16 (`use_bf16`) the forward
    pass runs under autocast (mixed precision); the weights and the optimizer stay float32."""
    group = distributed.join(device)
    try:
        source = TrainingData(dataset, data_dir, images)
        return fit(group, source, Path(out), cfg, opts, resume, progress and group.is_main, init)[0]
    finally:
        distributed.leave()


class TrainingData:
    """What a run trains and validates on: a named data set's splits, or crops of a folder of pictures."""

    def __init__(self, dataset: str | None, data_dir: str | None, images: str | os.PathLike | None):
        self.dataset, self.data_dir, self.images = dataset, data_dir, images
        self.folder: ImageFolder | None = None
        self.fixed_train: np.ndarray | None = None

    def load(self, cfg: VLAEConfig, opts: TrainOptions, log: dict) -> None:
        """Read the data; a resumed run reads the folder its log names."""
        self.images = self.images or log.get("images")
        self.dataset = self.dataset or log.get("dataset")
        if self.images is not None:
            self.folder = ImageFolder.open(self.images, cfg.channels, opts.crop)
            self.valid = self.folder.valid_crops()
        else:
            self.fixed_train = data.load_split(self.dataset, "train", self.data_dir)
            self.valid = data.load_split(self.dataset, "valid", self.data_dir)

    def describe(self) -> dict:
        if self.folder is None:
            return {"train_images": len(self.fixed_train), "valid_images": len(self.valid)}
        return {"images": str(Path(self.folder.folder).resolve()), "train_files": self.folder.train_names,
                "held_out_files": self.folder.valid_names, "train_pixels": self.folder.train_pixels,
                "valid_images": len(self.valid)}

    def epoch_images(self, opts: TrainOptions, epoch: int) -> np.ndarray:
        """The epoch's training images; fresh crops each epoch for a folder, the same on every process."""
        if self.folder is None:
            return self.fixed_train
        return self.folder.train_crops(opts.epoch_crops, np.random.default_rng([opts.seed, epoch, 1]))


def _start_log(out: Path, source: TrainingData, cfg: VLAEConfig | None, opts: TrainOptions | dict | None,
               resume: bool) -> tuple[dict, VLAEConfig, TrainOptions]:
    """The run's log, config and options: new, or read back from the checkpointed run."""
    if resume:
        if not (_ckpt_dir(out) / "state.json").is_file():
            raise FileNotFoundError(f"--resume: no checkpoint in {_ckpt_dir(out)}")
        log = json.loads((out / zoo.LOG).read_text())
        cfg = VLAEConfig.from_dict(log["config"])
        # What the caller changes (say, more epochs) overrides the saved run. A dict names its
        # changes even where they equal a default (resuming a 0.95 decay with 0.97).
        defaults = asdict(TrainOptions())
        given = opts if isinstance(opts, dict) else {
            k: v for k, v in asdict(opts or TrainOptions()).items() if v != defaults[k]}
        saved = TrainOptions(**{**defaults, **log["options"], "max_steps": None})
        opts = replace(saved, **given)
        if opts.epochs != saved.epochs and not {"free_bits_hold", "free_bits_end"} & given.keys():
            opts = _same_free_bits(saved, opts)
        source.load(cfg, opts, log)
    else:
        if source.dataset not in PRESETS:
            raise ValueError(f"unknown preset {source.dataset!r}; known: {', '.join(PRESETS)}")
        cfg = cfg or PRESETS[source.dataset]
        opts = opts or TrainOptions()
        if source.images is not None:
            cfg = replace(cfg, height=opts.crop, width=opts.crop)
        log = {"dataset": source.dataset, "config": json.loads(cfg.to_json()), "epochs": []}
        source.load(cfg, opts, log)
        log.update(source.describe())
    log["options"] = asdict(opts)
    return log, cfg, opts


def _same_free_bits(saved: TrainOptions, opts: TrainOptions) -> TrainOptions:
    """`opts` with the free-bits schedule of `saved` kept at the same epochs. The schedule is
    given as fractions of the run's epochs, so a run resumed for more epochs would otherwise
    bring the floor back after it had faded (the photo run's epochs 101-116 of 70 planned)."""
    scale = saved.epochs / opts.epochs
    return replace(opts, free_bits_hold=saved.free_bits_hold * scale, free_bits_end=saved.free_bits_end * scale)


@dataclass
class _Run:
    """One process's training run: what `fit`'s phases share."""

    group: distributed.Group
    source: TrainingData
    out: Path
    log: dict
    opts: TrainOptions
    model: VLAE
    ema: VLAE  # the weights' moving average: what is validated and saved
    opt: torch.optim.Optimizer
    step_model: torch.nn.Module  # the model, wrapped for DistributedDataParallel with several processes
    autocast: contextlib.AbstractContextManager
    state: dict  # epoch, step_in_epoch, global_step, best_valid, wall (and mid-epoch sums when resumed)
    run_start: float
    last_ckpt: float

    @property
    def dims(self) -> int:
        return self.model.cfg.dims

    def write_log(self) -> None:
        zoo.write_text_atomic(self.out / zoo.LOG, json.dumps(self.log, indent=1) + "\n")


def fit(group: distributed.Group, source: TrainingData, out: Path, cfg: VLAEConfig | None,
        opts: TrainOptions | dict | None, resume: bool, progress: bool, init: str | None = None) -> tuple[dict, VLAE]:
    """`train` within a joined process group; returns the log and this process's model."""
    run = _start(group, source, out, cfg, opts, resume, init)
    while run.state["epoch"] < run.opts.epochs:
        done = _train_epoch(run, progress)
        if done is None:  # stopped early by max_steps: resumable
            break
        _end_epoch(run, progress, *done)
        if run.opts.max_steps is not None and run.state["global_step"] >= run.opts.max_steps:
            break
    return run.log, run.model


def _start(group: distributed.Group, source: TrainingData, out: Path, cfg: VLAEConfig | None,
           opts: TrainOptions | dict | None, resume: bool, init: str | None) -> _Run:
    """The log, the models and the optimizer, new or from the checkpoint in `out`."""
    if group.is_main:
        out.mkdir(parents=True, exist_ok=True)
    log, cfg, opts = _start_log(out, source, cfg, opts, resume)
    log["processes"] = group.world
    if opts.batch_size % group.world:
        raise ValueError(f"batch size {opts.batch_size} does not split over {group.world} processes")
    if init is not None and not resume:
        log["init"] = str(init)

    torch.manual_seed(opts.seed)
    model = VLAE(cfg) if init is None or resume else transplant.start_from(zoo.load(init), cfg)
    model = model.to(group.device)
    ema = VLAE(cfg).to(group.device)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=opts.lr)
    state = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "best_valid": None, "wall": 0.0}
    if resume:
        state.update(_load_checkpoint(out, model, ema, opt))
    step_model = model
    if group.world > 1:
        step_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[group.device.index] if group.device.type == "cuda" else None)
    autocast = torch.autocast(group.device.type, dtype=torch.bfloat16) \
        if use_bf16(opts.precision, group.device) else contextlib.nullcontext()
    return _Run(group, source, out, log, opts, model, ema, opt, step_model, autocast, state,
                run_start=time.time() - state["wall"], last_ckpt=time.time())


def _train_epoch(run: _Run, progress: bool) -> tuple[dict, float] | None:
    """The steps of the current epoch, from where it stands: the epoch's sums over all processes
    and its start time, or None if max_steps stopped it early."""
    opts, state, group, dims = run.opts, run.state, run.group, run.dims
    epoch = state["epoch"]
    for g in run.opt.param_groups:
        g["lr"] = opts.lr * opts.lr_decay ** epoch
    # The permutation depends only on (seed, epoch), so a mid-epoch resume sees the same order,
    # and every process the same global batches.
    train_x = run.source.epoch_images(opts, epoch)
    steps_per_epoch = len(train_x) // opts.batch_size
    order = np.random.default_rng([opts.seed, epoch]).permutation(len(train_x))
    sums = state.get("epoch_sums", {"neg_elbo": 0.0, "kl": 0.0, "n": 0})
    local = {"neg_elbo": 0.0, "kl": 0.0, "n": 0}  # this process's share since the epoch (re)started
    window = [0.0, 0.0]  # this process's neg-ELBO sum and image count since the last curve point
    epoch_start = time.time() - state.get("epoch_wall", 0.0)
    bar = tqdm(range(state["step_in_epoch"], steps_per_epoch), desc=f"epoch {epoch + 1}/{opts.epochs}",
               disable=not progress, mininterval=1.0 if sys.stderr.isatty() else 30.0,
               initial=state["step_in_epoch"], total=steps_per_epoch)
    run.model.train()
    for step in bar:
        idx = order[step * opts.batch_size:(step + 1) * opts.batch_size][group.rank::group.world]
        terms = _step(run, data.to_tensor(train_x[idx]).to(group.device), epoch + step / steps_per_epoch)
        local["neg_elbo"] += terms["neg_elbo"].sum().item()
        local["kl"] += terms["kl"].sum().item()
        local["n"] += len(idx)
        window[0] += terms["neg_elbo"].sum().item()
        window[1] += len(idx)
        state["global_step"] += 1
        if state["global_step"] % CURVE_EVERY == 0:
            # The loss curve: the global batch's mean over the last CURVE_EVERY steps.
            total, count = group.all_sum(window)
            run.log.setdefault("curve", []).append(
                {"step": state["global_step"], "train_neg_elbo_bits_per_dim": total / count / dims / LOG2})
            window = [0.0, 0.0]
        state["step_in_epoch"] = step + 1
        if progress:
            bar.set_postfix(refresh=False, bpd=f"{local['neg_elbo'] / local['n'] / dims / LOG2:.4f}",
                            kl_bits=f"{local['kl'] / local['n'] / LOG2:.1f}")
        # Every process must take part in the same collectives, so the decision to save
        # mid-epoch is rank 0's clock, shared.
        due = group.all_sum([float(group.is_main and time.time() - run.last_ckpt > 60 * opts.checkpoint_minutes)])[0] \
            if state["global_step"] % 20 == 0 else 0.0
        stop = opts.max_steps is not None and state["global_step"] >= opts.max_steps
        if due or (stop and step + 1 < steps_per_epoch):
            _save_midway(run, sums, local, epoch_start)
        if stop:
            break
    bar.close()
    if state["step_in_epoch"] < steps_per_epoch:
        return None
    return _merged(group, sums, local), epoch_start


def _step(run: _Run, x: torch.Tensor, epochs_done: float) -> dict:
    """One optimizer step on a batch, and the EMA's; returns the batch's ELBO terms."""
    opts = run.opts
    beta = min(1.0, 0.2 + 0.8 * epochs_done / opts.warmup_epochs) if opts.warmup_epochs > 0 else 1.0
    with run.autocast:
        terms = run.step_model(x)
    floor = free_bits_nats(opts, epochs_done)
    loss = (terms["recon"].mean() + beta * terms["kl"].mean().clamp(min=floor)) / run.dims
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), opts.grad_clip)
    run.opt.step()
    # The average warms up (decay (1+t)/(10+t) until it reaches opts.ema): a fixed 0.999
    # from step 0 still gave the random initial weights 6% at step 2,700 of the cifar run,
    # which cost its validation -ELBO 1.5 bits/dim.
    decay = min(opts.ema, (1 + run.state["global_step"]) / (10 + run.state["global_step"]))
    with torch.no_grad():
        for pe, pm in zip(run.ema.parameters(), run.model.parameters()):
            pe.lerp_(pm, 1.0 - decay)
    return terms


def _end_epoch(run: _Run, progress: bool, total: dict, epoch_start: float) -> None:
    """Validate the EMA (rank 0), log the epoch, keep the best weights, checkpoint."""
    state, group, dims = run.state, run.group, run.dims
    epoch = state["epoch"]
    if group.is_main:
        run.ema.eval()
        valid = evaluate_elbo(run.ema, run.source.valid, device=group.device)
        n = max(total["n"], 1)
        entry = {
            "epoch": epoch + 1, "steps": state["step_in_epoch"], "lr": run.opts.lr * run.opts.lr_decay ** epoch,
            "train_neg_elbo_nats": total["neg_elbo"] / n,
            "train_neg_elbo_bits_per_dim": total["neg_elbo"] / n / dims / LOG2,
            "train_kl_bits": total["kl"] / n / LOG2,
            "valid_neg_elbo_nats": valid["neg_elbo"],
            "valid_neg_elbo_bits_per_dim": valid["neg_elbo"] / dims / LOG2,
            "valid_kl_bits": valid["kl"] / LOG2,
            "epoch_seconds": time.time() - epoch_start,
            "wall_seconds": time.time() - run.run_start,
        }
        run.log["epochs"].append(entry)
        run.log["total_wall_seconds"] = entry["wall_seconds"]
        if progress:
            print(json.dumps(entry), file=sys.stderr, flush=True)
        if state["best_valid"] is None or valid["neg_elbo"] < state["best_valid"]:
            state["best_valid"] = valid["neg_elbo"]
            run.log["best_epoch"] = epoch + 1
            zoo.save(_on_cpu(run.ema), run.out)
    state.update(epoch=epoch + 1, step_in_epoch=0, epoch_sums={"neg_elbo": 0.0, "kl": 0.0, "n": 0},
                 epoch_wall=0.0, wall=time.time() - run.run_start)
    if group.is_main:
        _save_checkpoint(run.out, run.model, run.ema, run.opt, state)
        run.write_log()
    group.barrier()
    run.last_ckpt = time.time()


def _merged(group: distributed.Group, sums: dict, local: dict) -> dict:
    """The epoch's sums over all processes: what a resumed checkpoint carried, plus every share since."""
    shared = group.all_sum([local["neg_elbo"], local["kl"], float(local["n"])])
    return {"neg_elbo": sums["neg_elbo"] + shared[0], "kl": sums["kl"] + shared[1], "n": int(sums["n"] + shared[2])}


def _save_midway(run: _Run, sums: dict, local: dict, epoch_start: float) -> None:
    """A mid-epoch checkpoint (rank 0 writes; all processes merge their sums first)."""
    total = _merged(run.group, sums, local)
    if run.group.is_main:
        saved = dict(run.state, epoch_sums=total, epoch_wall=time.time() - epoch_start,
                     wall=time.time() - run.run_start)
        _save_checkpoint(run.out, run.model, run.ema, run.opt, saved)
        run.write_log()
    run.group.barrier()
    run.last_ckpt = time.time()


def _on_cpu(model: VLAE) -> VLAE:
    """The model itself if it is on the CPU, else a CPU copy (shipped weights are CPU tensors)."""
    if next(model.parameters()).device.type == "cpu":
        return model
    copy = VLAE(model.cfg)
    copy.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    return copy
