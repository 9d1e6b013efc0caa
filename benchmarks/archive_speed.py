"""Compression and decompression speed of a model's whole test set as one archive, each in a
fresh process (model loading timed apart), repeated; for speed targets on a quiet machine.

Run: python -m benchmarks.archive_speed MODEL [--repeats 2] [--threads 2] [--one-chain-too] [--data-dir DIR]
Writes benchmarks/results/speed_MODEL.json and .md. With --one-chain-too, each run is followed by
one of the same archive coded as a single chain (as before format version 6), for a comparison
made on the same machine at the same time.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


from . import speed
from .common import arguments, model_test_set, provenance, write


def main() -> None:
    ap = arguments(__doc__, "shipped model name or model folder")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--one-chain-too", action="store_true", help="after each run, one with a single chain")
    args = ap.parse_args()
    dataset, x = model_test_set(args.model, args.data_dir)
    runs, one_chain = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            runs.append(speed.archive(args.model, x, args.threads, Path(tmp))[2])
            if args.one_chain_too:
                one_chain.append(speed.archive(args.model, x, args.threads, Path(tmp), chains=1)[2])
    label = Path(args.model).name
    result = {"provenance": {**provenance(), "torch_threads": args.threads}, "model": args.model,
              "dataset": dataset, "images": len(x), "runs": runs}
    if one_chain:
        result["one_chain_runs"] = one_chain
    rows = [_row(f"{i + 1}", r) for i, r in enumerate(runs)] + [_row(f"{i + 1}, one chain", r)
                                                                 for i, r in enumerate(one_chain)]
    md = "\n".join([f"# {label}: the {dataset} test set ({len(x):,} images) as one archive", "",
                    "Coding time only (the model's loading is timed apart); each run in fresh processes; "
                    "exact round trip checked.", "",
                    "| run | compress | decompress | peak memory (compress / decompress) | bytes |",
                    "| --- | --- | --- | --- | --- |", *rows])
    write(f"speed_{label}", result, md)
    print(md)


def _row(label: str, r: dict) -> str:
    return (f"| {label} | {r['compress_seconds']:.1f} s ({r['compress_images_per_second']:.0f}/s) "
            f"| {r['decompress_seconds']:.1f} s ({r['decompress_images_per_second']:.0f}/s) "
            f"| {r['compress_peak_mib']:.0f} / {r['decompress_peak_mib']:.0f} MiB | {r['bytes']:,} |")


if __name__ == "__main__":
    main()
