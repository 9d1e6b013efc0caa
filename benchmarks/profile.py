"""Where the time goes: one photo compressed and decompressed in fresh processes, sampled by py-spy.

Run: python -m benchmarks.profile [--photo kodim23] [--threads 2] [--rate 100] [--data-dir DIR]
Writes benchmarks/results/profile.json and .md. Each sample is put in the first category whose
function appears on its stack (innermost frames first within a category list), so the shares
add up to 100% of the wall time that py-spy saw, idle threads excluded.
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vlae_codec.model import data

from .common import arguments, provenance, write

# (category, frame names that place a sample in it), tried in this order.
CATEGORIES = (
    ("imports", ("_find_and_load",)),
    ("model load", ("load_coding_model", "coding_model", "CodingForm.load")),
    ("fitting (offsets, clean shift)", ("tuning.py",)),
    ("context-coder trial", ("_push_planes", "_pop_planes")),
    ("PNG read/write and fallback", ("png_bytes", "fallback.py", "images.py")),
    ("posterior q(z|x)", ("VLAECodingModel.posterior",)),
    ("features of z", ("VLAECodingModel.features", "VLAECodingModel.pixel_features", "pixel_features.py")),
    ("pixel windows and network", ("_step_params", "pixel_params", "_canvas")),
    ("mixture/CDF tables", ("pixel_freqs", "pixel_symbols", "pixel_value")),
    ("ANS push/pop", ("ans.py",)),
    ("latents (prior, bins)", ("latents.py",)),
)
OTHER = "other"


def categorize(stacks: dict[str, int]) -> dict[str, int]:
    """Samples per category from py-spy's collapsed stacks ("frame;frame;... count")."""
    counts: collections.Counter = collections.Counter()
    for stack, n in stacks.items():
        frames = stack.split(";")
        for name, keys in CATEGORIES:
            if any(k in f for f in frames for k in keys):
                counts[name] += n
                break
        else:
            counts[OTHER] += n
    return dict(counts)


def sample(command: list[str], rate: int) -> tuple[float, dict[str, int]]:
    """Wall seconds of a command and its collapsed stacks, sampled `rate` times a second."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "stacks.txt"
        start = time.perf_counter()
        subprocess.run(["py-spy", "record", "--nonblocking", "--format", "raw", "--rate", str(rate), "--output", str(raw),
                        "--", *command], check=True, capture_output=True)
        seconds = time.perf_counter() - start
        stacks = {}
        for line in raw.read_text().splitlines():
            stack, n = line.rsplit(" ", 1)
            stacks[stack] = stacks.get(stack, 0) + int(n)
    return seconds, stacks


def main() -> None:
    ap = arguments(__doc__)
    ap.add_argument("--photo", default="kodim23")
    ap.add_argument("--rate", type=int, default=100, help="samples per second")
    args = ap.parse_args()
    if shutil.which("py-spy") is None:
        sys.exit("py-spy is needed: pip install -e '.[bench]'")
    source = data.data_dir(args.data_dir) / "kodak" / f"{args.photo}.png"
    cli = [sys.executable, "-m", "vlae_codec.cli"]
    result = {"provenance": {**provenance(), "torch_threads": args.threads}, "photo": source.name,
              "rate": args.rate, "directions": {}}
    with tempfile.TemporaryDirectory() as tmp:
        packed, restored = Path(tmp) / "photo.vlae", Path(tmp) / "photo.png"
        commands = {"compress": cli + ["compress", str(source), "-o", str(packed), "--threads", str(args.threads)],
                    "decompress": cli + ["decompress", str(packed), "-o", str(restored), "--threads", str(args.threads)]}
        for direction, command in commands.items():
            seconds, stacks = sample(command, args.rate)
            counts = categorize(stacks)
            total = sum(counts.values())
            result["directions"][direction] = {
                "seconds_under_profiler": seconds, "samples": total,
                "share": {k: v / total for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}}
    lines = [f"# Where the time goes: {source.name}, {args.threads} threads", "",
             "Fresh process per direction, sampled by py-spy at "
             f"{args.rate} Hz; each sample goes to the first matching category (benchmarks/profile.py).", ""]
    for direction, d in result["directions"].items():
        lines += [f"## {direction}: {d['seconds_under_profiler']:.1f} s under the profiler", "",
                  "| category | share | seconds |", "| --- | --- | --- |"]
        lines += [f"| {k} | {v:.1%} | {v * d['seconds_under_profiler']:.1f} |" for k, v in d["share"].items()]
        lines.append("")
    write("profile", result, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
