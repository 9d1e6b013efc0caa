"""Compression and decompression speed of a model's whole test set as one archive, each in a
fresh process (model loading timed apart), repeated; for speed targets on a quiet machine.

Run: python -m benchmarks.archive_speed MODEL [--repeats 2] [--threads 2] [--data-dir DIR]
Writes benchmarks/results/speed_MODEL.json and .md.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


from . import speed
from .common import arguments, model_test_set, provenance, write


def main() -> None:
    ap = arguments(__doc__, "shipped model name or model folder")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    dataset, x = model_test_set(args.model, args.data_dir)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            runs.append(speed.archive(args.model, x, args.threads, Path(tmp))[2])
    label = Path(args.model).name
    result = {"provenance": {**provenance(), "torch_threads": args.threads}, "model": args.model,
              "dataset": dataset, "images": len(x), "runs": runs}
    rows = [f"| {i + 1} | {r['compress_seconds']:.1f} s ({r['compress_images_per_second']:.0f}/s) "
            f"| {r['decompress_seconds']:.1f} s ({r['decompress_images_per_second']:.0f}/s) "
            f"| {r['compress_peak_mib']:.0f} / {r['decompress_peak_mib']:.0f} MiB |" for i, r in enumerate(runs)]
    md = "\n".join([f"# {label}: the {dataset} test set ({len(x):,} images) as one archive", "",
                    "Coding time only (the model's loading is timed apart); each run in fresh processes; "
                    "exact round trip checked.", "",
                    "| run | compress | decompress | peak memory (compress / decompress) |",
                    "| --- | --- | --- | --- |", *rows])
    write(f"speed_{label}", result, md)
    print(md)


if __name__ == "__main__":
    main()
