"""The scripts behind the figures the top-level README quotes, run after the suite's own measurements (python -m benchmarks --steps-only [NAME ...])."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

# The scripts whose results the README quotes, each with the options its results were made with:
# results name (benchmarks/results/NAME.json and .md) -> module and arguments. The full run ends
# with them, one child process each; they take hours more than the suite's own measurements.
# tests/test_readme_figures.py checks the README's figures against these files.
README_STEPS = {
    "bmnist": ["on_test_set", "bmnist", "--threads", "2"],
    "mnist": ["on_test_set", "mnist"],
    "cifar": ["on_test_set", "cifar", "--threads", "1", "--samples", "0", "--elbo-samples", "1",
              "--lossy-images", "1000", "--lossy-effort", "1", "--efforts"],
    "bbans": ["bbans.measure"],
    "speed_mnist": ["archive_speed", "mnist"],
    "speed_bmnist": ["archive_speed", "bmnist"],
    "speed_cifar": ["archive_speed", "cifar", "--repeats", "1"],
    "flops": ["flops"],
    "single_files": ["single_files", "--threads", "1"],
    "lossy_effort_mnist": ["lossy_effort", "mnist", "--threads", "1", "--efforts", "64"],
    "kodak": ["photos", "--set", "kodak"],
    "kodak_cifar": ["photos", "--set", "kodak", "--model", "cifar", "--name", "kodak_cifar"],
    "kodak_luma": ["photos", "--set", "kodak-luma", "--card"],
    "photos_held_out": ["photos", "--set", "held-out"],
    "modes": ["modes", "--crop", "96", "--photos", "kodim23"],
    "model_choice": ["model_choice"],
    "photo_speed": ["photo_speed", "--photos", "kodim23", "kodim05", "--repeats", "2"],
    "profile": ["profile", "--photo", "kodim23"],
    "big_photo": ["big_photo"],
    "context_trial": ["context_trial", "--mosaic"],
}
NO_DATA_DIR = ("bbans.measure",)  # modules that take no --data-dir


def run_readme_steps(names: list[str], data_dir: str | None) -> None:
    """Run the README_STEPS named, in order, each as `python -m benchmarks.MODULE ...` from the repository root."""
    for name in names:
        module, *args = README_STEPS[name]
        if data_dir and module not in NO_DATA_DIR:
            args += ["--data-dir", data_dir]
        cmd = [sys.executable, "-m", f"benchmarks.{module}", *args]
        print(f"[{time.strftime('%H:%M:%S')}] README step {name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        if subprocess.run(cmd, cwd=Path(__file__).resolve().parents[1]).returncode != 0:
            raise SystemExit(f"README step {name} failed: {' '.join(cmd[1:])}")
