"""One process against two (torchrun, gloo on CPU) with the same global batch: loss curves side
by side, and each run's checkpoint resumed by the other kind of run.

Run: python -m benchmarks.ddp [--dataset bmnist] [--epochs 1] [--batch-size 128]
Writes benchmarks/results/ddp.json and ddp.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import provenance, write


def train(out: Path, processes: int, args, extra: list[str]) -> float:
    """Run `vlae-codec train` with 1 process or under torchrun; returns wall seconds."""
    cmd = ["-m", "vlae_codec.cli", "train", "--dataset", args.dataset, "--out", str(out),
           "--batch-size", str(args.batch_size), *extra]
    if processes == 1:
        cmd = [sys.executable, *cmd, "--threads", str(args.threads)]
    else:  # torchrun gives each process one thread (OMP_NUM_THREADS=1)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes), *cmd]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-3000:]}")
    return time.time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="bmnist")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2, help="threads of the one-process run")
    ap.add_argument("--resume-steps", type=int, default=20, help="steps each resumed run takes")
    args = ap.parse_args()
    runs, logs, seconds = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 2):
            runs[n] = Path(tmp) / f"p{n}"
            seconds[n] = train(runs[n], n, args, ["--epochs", str(args.epochs)])
            logs[n] = json.loads((runs[n] / "train_log.json").read_text())
            print(f"{n} process(es): {seconds[n]:.0f} s", file=sys.stderr, flush=True)
        # Checkpoints load in either kind of run: resume each with the other and take a few steps.
        resumed = {}
        for made, by in ((1, 2), (2, 1)):
            copy = Path(tmp) / f"p{made}_by{by}"
            shutil.copytree(runs[made], copy)
            state = json.loads((copy / "checkpoint" / "state.json").read_text())
            steps = state["global_step"] + args.resume_steps
            train(copy, by, args, ["--resume", "--epochs", str(args.epochs + 1), "--max-steps", str(steps)])
            after = json.loads((copy / "checkpoint" / "state.json").read_text())
            resumed[f"made by {made}, resumed by {by}"] = {"from_step": state["global_step"],
                                                          "to_step": after["global_step"],
                                                          "ok": after["global_step"] == steps}
    curves = {n: {p["step"]: p["train_neg_elbo_bits_per_dim"] for p in logs[n].get("curve", [])} for n in (1, 2)}
    steps = sorted(set(curves[1]) & set(curves[2]))
    diffs = [curves[2][s] - curves[1][s] for s in steps]
    # The noise a curve point carries: how much it moves between neighbouring points late in the
    # run, where the trend is slow; the two runs differ in their z draws, so they differ by about that.
    late = [curves[1][s] for s in steps[len(steps) // 2:]]
    jitter = max(abs(a - b) for a, b in zip(late, late[1:])) if len(late) > 1 else None
    epochs = {n: [{k: e[k] for k in ("epoch", "train_neg_elbo_bits_per_dim", "valid_neg_elbo_bits_per_dim")}
                  for e in logs[n]["epochs"]] for n in (1, 2)}
    result = {"provenance": provenance(), "dataset": args.dataset, "batch_size": args.batch_size,
              "epochs": epochs, "seconds": seconds, "curve_steps": steps,
              "curve_1_process": [curves[1][s] for s in steps], "curve_2_processes": [curves[2][s] for s in steps],
              "max_abs_difference": max(map(abs, diffs)) if diffs else None,
              "mean_difference": sum(diffs) / len(diffs) if diffs else None,
              "late_curve_jitter": jitter, "resumed": resumed}
    md = [f"# {args.dataset}: one process against two (torchrun, gloo), global batch {args.batch_size}", "",
          f"Wall time: 1 process ({args.threads} threads) {seconds[1]:.0f} s; 2 processes (1 thread each) "
          f"{seconds[2]:.0f} s.", "",
          "| epoch | train -ELBO, 1 process | 2 processes | valid -ELBO, 1 process | 2 processes |",
          "| --- | --- | --- | --- | --- |"]
    for a, b in zip(epochs[1], epochs[2]):
        md.append(f"| {a['epoch']} | {a['train_neg_elbo_bits_per_dim']:.4f} | {b['train_neg_elbo_bits_per_dim']:.4f} | "
                  f"{a['valid_neg_elbo_bits_per_dim']:.4f} | {b['valid_neg_elbo_bits_per_dim']:.4f} |")
    md += ["", f"Loss curve (bits/dim, mean over each {steps[1] - steps[0] if len(steps) > 1 else ''} steps):", "",
           "| step | 1 process | 2 processes | difference |", "| --- | --- | --- | --- |"]
    md += [f"| {s} | {curves[1][s]:.4f} | {curves[2][s]:.4f} | {d:+.4f} |" for s, d in zip(steps, diffs)]
    if diffs:
        md += ["", f"Largest difference {result['max_abs_difference']:.4f} bits/dim, mean {result['mean_difference']:+.4f}; "
               f"the one-process curve itself moves by up to {jitter:.4f} between neighbouring points in its second half."]
    md += ["", "Checkpoints resumed by the other kind of run:", ""]
    md += [f"- {k}: step {v['from_step']} to {v['to_step']}, {'ok' if v['ok'] else 'FAILED'}" for k, v in resumed.items()]
    write("ddp", result, "\n".join(md))


if __name__ == "__main__":
    main()
