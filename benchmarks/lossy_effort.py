"""The lossy mode on a digit model's whole test set at chosen efforts: bytes per digit and how
often the digit classifier gives the reconstruction the original's class.

Run: python -m benchmarks.lossy_effort MODEL [--efforts 64] [--threads 2] [--data-dir DIR]
Writes benchmarks/results/lossy_effort_MODEL.json and .md.
"""

from __future__ import annotations

from pathlib import Path

import torch


from .common import arguments, model_test_set, provenance, write
from .lossy import judge_and_classes, vlae_lossy


def main() -> None:
    ap = arguments(__doc__, "shipped digit model (bmnist, mnist) or its folder")
    ap.add_argument("--efforts", type=int, nargs="+", default=[64])
    ap.add_argument("--limit", type=int, default=None, help="first N test digits only (a smoke test; not for results)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dataset, x = model_test_set(args.model, args.data_dir)
    x = x[:args.limit]
    judge, classes = judge_and_classes(x, args.data_dir)
    result = {"provenance": provenance(), "model": args.model, "dataset": dataset, "images": len(x),
              "runs": [vlae_lossy(args.model, x, classes, judge, effort)[0] for effort in args.efforts]}
    label = Path(args.model).name
    md = [f"# {label}: lossy mode on the whole {dataset} test set ({len(x):,} digits)", "",
          "| effort | bytes/digit (one archive) | class agreement | compress |", "| --- | --- | --- | --- |"]
    md += [f"| {r['effort']} | {r['bytes_per_image']:.2f} | {100 * r['class_agreement']:.2f}% | {r['compress_seconds']} s |"
           for r in result["runs"]]
    write(f"lossy_effort_{label}", result, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
