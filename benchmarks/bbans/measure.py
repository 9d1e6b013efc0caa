"""Real bits/dim of the BB-ANS baselines, coded with this project's coder, against their ELBOs.

Run from the repository root: python -m benchmarks.bbans.measure [--models bbans_bmnist bbans_mnist] [--limit N]
Writes benchmarks/results/bbans.json and bbans.md. `rate_vs_count` is importable by other
benchmarks (`from .bbans.measure import rate_vs_count`).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vlae_codec import ans, bitsback, container
from vlae_codec.accounting import coding_neg_elbo
from vlae_codec.model import data

from ..common import provenance, write

from . import mlp_vae
from .coding import MLPCodingModel

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MODELS = ("bbans_bmnist", "bbans_mnist")
COUNTS = (1, 10, 100, 1000, 10000)
BATCH = 256  # images per network evaluation when encoding; decoding uses another to show it does not matter
DECODE_BATCH = 100


@dataclass
class Archive:
    """One chained bits-back archive of the first n images."""

    n: int
    dims: int
    words: np.ndarray
    info: bitsback.Info
    file_bytes: int  # the archive in the project's container: header, payload and CRC
    roundtrip_ok: bool
    seconds: tuple[float, float]  # encode, decode

    @property
    def payload_bits_per_dim(self) -> float:
        return 32 * len(self.words) / self.dims

    @property
    def file_bits_per_dim(self) -> float:
        return 8 * self.file_bytes / self.dims


def codable(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Images as the coding model takes them: int64 (N, 1, H, W), from uint8 (N, H, W) or a tensor."""
    t = torch.as_tensor(np.asarray(x) if isinstance(x, np.ndarray) else x).long()
    return t[:, None] if t.dim() == 3 else t


def code_archive(cm: MLPCodingModel, x: np.ndarray | torch.Tensor, chunk_max: int = bitsback.DEFAULT_CHUNK_MAX,
                 batch: int = BATCH, decode_batch: int = DECODE_BATCH, model_id: str = "bbans") -> Archive:
    """Encode images as one chained archive with the project's clean start, decode them with
    another batch size, and check every pixel."""
    x = codable(x)
    n, _, h, w = x.shape
    t0 = time.time()
    stack = ans.Stack()
    info = bitsback.encode_lossless(stack, cm, x, chunk_max, batch)
    words = stack.words()
    t1 = time.time()
    back = bitsback.decode_lossless(ans.Stack(words), cm, n, h, w, chunk_max, decode_batch)
    t2 = time.time()
    pixels = x[:, 0].numpy().astype(np.uint8)
    try:
        model_hash = bytes.fromhex(cm.weights_hash)[:8]
    except ValueError:  # a model that was never saved has no identity to record
        model_hash = bytes(8)
    header = container.Header("lossless", model_id, model_hash, h, w, 1,
                              1 if cm.cfg.likelihood == "bernoulli" else 8, n, "array", chunk_max, None,
                              container.pixel_checksum(pixels))
    file_bytes = len(container.pack(header, words))
    return Archive(n, x[0].numel() * n, words, info, file_bytes, bool(torch.equal(back, x)),
                   (t1 - t0, t2 - t1))


def archives(cm: MLPCodingModel, x: np.ndarray | torch.Tensor, counts: tuple[int, ...],
             model_id: str = "bbans") -> dict[int, Archive]:
    """`code_archive` of the first n images for each n in counts; a failed round trip raises."""
    x = codable(x)
    if max(counts) > len(x):
        raise ValueError(f"counts go up to {max(counts)} but only {len(x)} images were given")
    out = {}
    for n in counts:
        out[n] = code_archive(cm, x[:n], model_id=model_id)
        if not out[n].roundtrip_ok:
            raise RuntimeError(f"archive of {n} images did not decode to its input")
    return out


def rate_vs_count(cm: MLPCodingModel, x: np.ndarray | torch.Tensor, counts: tuple[int, ...] = COUNTS,
                  with_header: bool = False, model_id: str = "bbans") -> dict[int, float]:
    """Real bits/dim when only the first n images are coded as one archive, for each n in counts.

    Payload only (32 bits per ANS word) unless `with_header`, which counts the whole file in
    the project's container format (its header holds `model_id`). Every archive is decoded
    and checked."""
    return {n: a.file_bits_per_dim if with_header else a.payload_bits_per_dim
            for n, a in archives(cm, x, counts, model_id).items()}


def load(name: str) -> tuple[mlp_vae.MLPVAE, MLPCodingModel, str]:
    """Float model, coding form and data set of a trained baseline in weights/NAME."""
    directory = WEIGHTS_DIR / name
    if not (directory / mlp_vae.WEIGHTS).is_file():
        raise FileNotFoundError(f"{directory} holds no trained model; run: python -m bbans.train")
    dataset = json.loads((directory / mlp_vae.LOG).read_text())["dataset"]
    return mlp_vae.load(directory), MLPCodingModel.load(directory), dataset


def measure(name: str, limit: int | None, counts: tuple[int, ...], elbo_samples: int) -> dict:
    """Every figure of one baseline on its test set."""
    model, cm, dataset = load(name)
    x = data.load_split(dataset, "test")[:limit]
    dims = x.size
    t0 = time.time()
    float_fig = mlp_vae.evaluate(model, x, samples=elbo_samples)
    info = coding_neg_elbo(cm, codable(x))
    coded = archives(cm, x, tuple(sorted({c for c in counts if c <= len(x)} | {len(x)})), model_id=name)
    a = coded[len(x)]
    rates = {}
    for n, r in coded.items():
        rates[n] = {"payload_bits_per_dim": r.payload_bits_per_dim, "file_bits_per_dim": r.file_bits_per_dim,
                    "neg_elbo_bits_per_dim": float(r.info.total.sum() / r.dims), "roundtrip_ok": r.roundtrip_ok}
    return {
        "model": name, "dataset": dataset, "images": len(x), "config": json.loads(cm.cfg.to_json()),
        "float_neg_elbo_bits_per_dim": float_fig["neg_elbo_bits_per_dim"],
        "float_neg_elbo_nats_per_image": float_fig["neg_elbo_nats_per_image"],
        "float_kl_bits_per_image": float_fig["kl_bits_per_image"],
        "float_elbo_samples": elbo_samples,
        "coding_neg_elbo_bits_per_dim": float(info.total.mean() / cm.cfg.dims),
        "coding_kl_bits_per_image": float(info.latents.mean()),
        "latent_bins_lossless": cm.lossless_bins,
        "archive": {"payload_bytes": 4 * len(a.words), "file_bytes": a.file_bytes,
                    "payload_bits_per_dim": a.payload_bits_per_dim, "file_bits_per_dim": a.file_bits_per_dim,
                    "information_bits_per_dim": float(a.info.total.sum() / dims),
                    "clean_start_bits": float(a.info.total[0]),
                    "roundtrip_ok": a.roundtrip_ok, "encode_batch": BATCH, "decode_batch": DECODE_BATCH,
                    "encode_seconds": round(a.seconds[0], 1), "decode_seconds": round(a.seconds[1], 1)},
        "rate_vs_count": rates,
        "seconds": round(time.time() - t0, 1),
    }


def markdown(results: list[dict]) -> str:
    lines = ["# BB-ANS baseline (MLP VAE, N(0, I) prior) coded with this project's bits-back coder", "",
             "Real sizes: payload = 32 bits per ANS word of one chained archive with the project's clean "
             "start (no random initial bits); file = the same archive in the project's container "
             "(header, payload, CRC). Decoded with another batch size and checked pixel by pixel.", ""]
    for r in results:
        a = r["archive"]
        lines += [f"## {r['model']} on the {r['dataset']} test set ({r['images']:,} images)", "",
                  "| quantity | bits/dim |", "| --- | --- |",
                  f"| float model -ELBO ({r['float_elbo_samples']} z samples per image) | "
                  f"{r['float_neg_elbo_bits_per_dim']:.4f} ({r['float_neg_elbo_nats_per_image']:.2f} nats/image) |",
                  f"| coding form -ELBO (discretized z) | {r['coding_neg_elbo_bits_per_dim']:.4f} |",
                  f"| archive, information content | {a['information_bits_per_dim']:.4f} |",
                  f"| archive, real payload | **{a['payload_bits_per_dim']:.4f}** ({a['payload_bytes']:,} bytes) |",
                  f"| archive, real file | {a['file_bits_per_dim']:.4f} ({a['file_bytes']:,} bytes) |", "",
                  f"KL: {r['float_kl_bits_per_image']:.2f} bits/image (float), {r['coding_kl_bits_per_image']:.2f} "
                  f"(coding form). Clean start: {a['clean_start_bits']:.1f} bits. Round trip exact: {a['roundtrip_ok']} "
                  f"(encode batch {a['encode_batch']}, decode batch {a['decode_batch']}; "
                  f"{a['encode_seconds']} s / {a['decode_seconds']} s).", "",
                  "| first n test images as one archive | payload bits/dim | file bits/dim | information bits/dim "
                  "| exact |", "| ---: | ---: | ---: | ---: | --- |"]
        lines += [f"| {n} | {v['payload_bits_per_dim']:.4f} | {v['file_bits_per_dim']:.4f} | "
                  f"{v['neg_elbo_bits_per_dim']:.4f} | {v['roundtrip_ok']} |" for n, v in r["rate_vs_count"].items()]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    ap.add_argument("--limit", type=int, default=None, help="first N test images only (a smoke test; not for results)")
    ap.add_argument("--counts", type=int, nargs="*", default=list(COUNTS))
    ap.add_argument("--elbo-samples", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = [measure(name, args.limit, tuple(args.counts), args.elbo_samples) for name in args.models]
    out = {"provenance": provenance(), "results": results}
    md = markdown(results)
    write("bbans", out, md)
    print(md)


if __name__ == "__main__":
    main()
