"""A shipped model on its test set: model figures, real archive size against the ELBO,
other codecs, single-image files, lossy size.

Run: python -m benchmarks.on_test_set MODEL [--data-dir DIR] [--samples 100] [--elbo-samples 10] [--single 100]
Writes benchmarks/results/MODEL.json and MODEL.md, and the model's card.json.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import vlae_codec
from vlae_codec import container
from vlae_codec.accounting import coding_neg_elbo
from vlae_codec.api import as_tensor, coding_model
from vlae_codec.model import zoo
from vlae_codec.model.evaluate import evaluate

from . import classifier
from .common import RESULTS, arguments, model_test_set, provenance, write
from .rates import mosaic, other_codecs, single_file_figures


def main() -> None:
    args = _arguments().parse_args()
    torch.set_num_threads(args.threads)
    name = args.model
    label = Path(name).name  # results are named after the model, also when it is given as a folder
    dataset, x = model_test_set(name, args.data_dir)
    x = x[:args.limit]
    out: dict = {"provenance": provenance(), "model": name, "dataset": dataset, "images": len(x)}
    out["model_figures"] = _model_figures(name, dataset, x, args)
    out["archive"] = _archive(name, x)
    out["other_codecs"] = other_codecs(x, bool(x.max() <= 1))
    singles = x[np.random.default_rng(0).permutation(len(x))[:args.single]]
    out["single_files"] = single_file_figures(name, singles)
    out["lossy"] = _lossy(name, label, dataset, x, args, out["model_figures"])
    md = _markdown(out, args)
    write(label, out, md)
    print(md)


def _arguments() -> argparse.ArgumentParser:
    ap = arguments(__doc__, "shipped model name (bmnist, mnist, cifar)")
    ap.add_argument("--samples", type=int, default=100, help="importance samples per image (0: no NLL estimate)")
    ap.add_argument("--elbo-samples", type=int, default=10, help="z samples per image for the float -ELBO")
    ap.add_argument("--single", type=int, default=100, help="test digits coded as single files")
    ap.add_argument("--limit", type=int, default=None, help="first N test images only (a smoke test; not for results)")
    ap.add_argument("--lossy-subset", type=int, default=1000, help="random test digits for the lossy effort sweep")
    ap.add_argument("--efforts", type=int, nargs="*", default=[1, 4, 16, 32], help="lossy efforts to sweep")
    ap.add_argument("--lossy-effort", type=int, default=32, help="lossy effort for the whole-set lossy run")
    ap.add_argument("--lossy-images", type=int, default=None,
                    help="first N test images for the whole-set lossy run (default all; a photo model's lossy "
                         "decode is costly and has no class to keep)")
    return ap


def _model_figures(name: str, dataset: str, x: np.ndarray, args: argparse.Namespace) -> dict:
    """The float model's -ELBO, KL and importance-sampled NLL, and the coding form's -ELBO; also
    stored as the model's card."""
    t0 = time.time()
    figures = evaluate(zoo.load(name), x, is_samples=args.samples, elbo_samples=args.elbo_samples)
    cm = coding_model(name)
    info = coding_neg_elbo(cm, as_tensor(x))
    figures.update(coding_neg_elbo_bits_per_dim=float(info.total.mean() / cm.cfg.dims),
                   coding_neg_elbo_nats_per_image=float(info.total.mean() * math.log(2)),
                   coding_kl_bits_per_image=float(info.latents.mean()),
                   data=f"{dataset} test split", seconds=round(time.time() - t0, 1))
    zoo.write_text_atomic(zoo.resolve(name) / zoo.CARD, json.dumps(figures, indent=1) + "\n")
    return figures


def _archive(name: str, x: np.ndarray) -> dict:
    """The images as one archive: real size against information content, times, exact round trip."""
    dims = x.size
    t0 = time.time()
    enc = vlae_codec.encode(x, model=name)
    t_c = time.time() - t0
    t0 = time.time()
    back = vlae_codec.decode(enc.data, model=name).images
    t_d = time.time() - t0
    header, words = container.unpack(enc.data)
    archive = {
        "bytes": len(enc.data), "header_bytes": len(enc.data) - header.payload_bytes,
        "real_bits_per_dim": 8 * len(enc.data) / dims,
        "neg_elbo_bits_per_dim": float(enc.info.total.sum() / dims),
        "clean_start_bits": float(enc.info.total[0]),
        "compress_seconds": round(t_c, 2), "decompress_seconds": round(t_d, 2),
        "compress_images_per_second": round(len(x) / t_c, 1), "decompress_images_per_second": round(len(x) / t_d, 1),
        "roundtrip_ok": bool(np.array_equal(back, x)),
    }
    archive["real_over_neg_elbo"] = archive["real_bits_per_dim"] / archive["neg_elbo_bits_per_dim"]
    return archive


def _lossy(name: str, label: str, dataset: str, x: np.ndarray, args: argparse.Namespace, figures: dict) -> dict:
    """The lossy mode on the whole set at one effort and on a subset at several, judged by the
    digit classifier where there is one; saves a grid of originals and reconstructions."""
    binary = bool(x.max() <= 1)
    # The digit classifier judges lossy reconstructions of digits; other images get no judge.
    judge = classifier.load(args.data_dir) if dataset in ("bmnist", "mnist") else None
    labels = classifier.predict(judge, x) if judge else None

    def lossy_run(images: np.ndarray, effort: int) -> dict:
        t0 = time.time()
        lossy = vlae_codec.compress(images, model=name, lossy=True, effort=effort)
        seconds = time.time() - t0
        recon = vlae_codec.decode(lossy, model=name).images
        agree = float(np.mean(classifier.predict(judge, images) == classifier.predict(judge, recon))) if judge else None
        return {"images": len(images), "effort": effort, "bytes": len(lossy), "bytes_per_image": len(lossy) / len(images),
                "payload_bits_per_image": 32 * len(container.unpack(lossy)[1]) / len(images),
                "class_agreement": agree, "compress_seconds": round(seconds, 1), "recon": recon}

    lossy_x = x[:args.lossy_images]
    full = lossy_run(lossy_x, args.lossy_effort)
    recon = full.pop("recon")
    subset = np.random.default_rng(1).permutation(len(x))[:args.lossy_subset]
    sweep = [{k: v for k, v in lossy_run(x[subset], e).items() if k != "recon"} for e in args.efforts]
    result = {**full, "kl_bits_per_image": figures["kl_bits_per_image"],
              # bmnist's test images carry no labels; MNIST's do.
              "classifier_accuracy_on_originals": classifier.accuracy(labels, args.data_dir) if dataset == "mnist" else None,
              "effort_sweep": sweep}
    show = np.random.default_rng(2).permutation(len(lossy_x))[:20]  # the test set is sorted by class
    grid = np.concatenate([mosaic(lossy_x[show], 20), mosaic(recon[show], 20)])
    Image.fromarray((grid * 255).astype(np.uint8) if binary else grid).save(RESULTS / f"{label}_lossy.png")
    return result


def _markdown(out: dict, args: argparse.Namespace) -> str:
    """The results as a Markdown table."""
    name, dataset, x_count = out["model"], out["dataset"], out["images"]
    label = Path(name).name
    figures, a, others = out["model_figures"], out["archive"], out["other_codecs"]

    def pct(v: float | None) -> str:
        return "n/a (no digit classifier for these images)" if v is None else f"{100 * v:.1f}%"

    md = [
        f"# {name} on the {dataset} test set ({x_count:,} images)",
        "",
        "| quantity | value |", "| --- | --- |",
        f"| float model -ELBO ({args.elbo_samples} z samples per image) | {figures['neg_elbo_nats_per_image']:.2f} nats/image, {figures['neg_elbo_bits_per_dim']:.4f} bits/dim |",
        f"| coding form -ELBO | {figures['coding_neg_elbo_nats_per_image']:.2f} nats/image, {figures['coding_neg_elbo_bits_per_dim']:.4f} bits/dim |",
        f"| KL (float) | {figures['kl_bits_per_image']:.2f} bits/image |",
    ]
    if args.samples:
        md.append(f"| -log p(x), {args.samples} importance samples | {figures['nll_is_nats_per_image']:.2f} nats/image, "
                  f"{figures['nll_is_bits_per_dim']:.4f} bits/dim |")
    md += [
        f"| archive, real size | {a['bytes']} bytes, **{a['real_bits_per_dim']:.4f} bits/dim** |",
        f"| archive, information content (coded z) | {a['neg_elbo_bits_per_dim']:.4f} bits/dim |",
        f"| real / information | {a['real_over_neg_elbo']:.5f} |",
        f"| clean start (first image) | {a['clean_start_bits']:.1f} bits |",
        f"| compress / decompress | {a['compress_seconds']} s / {a['decompress_seconds']} s |",
        f"| round trip exact | {a['roundtrip_ok']} |",
    ]
    md += [f"| {k.replace('_bits_per_dim', '').replace('_', ' ')} | {v:.4f} bits/dim |" for k, v in others.items()]
    s = out["single_files"]
    md += [f"| single-image files ({s['images']}) | {s['mean_bytes']:.1f} bytes each ({s['mean_header_bytes']:.1f} header); "
           f"payload {s['payload_over_neg_elbo']:.2f} x their -ELBO |",
           f"| lossy, effort {out['lossy']['effort']}, {out['lossy']['images']:,} images | {out['lossy']['bytes_per_image']:.2f} bytes/image (KL {figures['kl_bits_per_image'] / 8:.2f} bytes); "
           f"classifier agrees on {pct(out['lossy']['class_agreement'])} ([originals above, reconstructions below]({label}_lossy.png)) |"]
    md += [f"| lossy, effort {e['effort']}, {e['images']} random digits | {e['bytes_per_image']:.2f} bytes/image, "
           f"agreement {pct(e['class_agreement'])}, compress {e['compress_seconds']} s |" for e in out["lossy"]["effort_sweep"]]
    md += ["", f"Compress {a['compress_images_per_second']} images/s, decompress {a['decompress_images_per_second']} images/s."]
    return "\n".join(md)


if __name__ == "__main__":
    main()
