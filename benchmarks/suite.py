"""The benchmark suite: for every shipped model, rates against other codecs and its own ELBO,
rate against archive size, speed and peak memory, and (for digits) the lossy mode; JSON
results, PNG plots and RESULTS.md.

Run from the repository root:
    python -m benchmarks            # full run: benchmarks/results/*.json, *.png and benchmarks/RESULTS.md
    python -m benchmarks --quick    # a few minutes on small subsets: everything under benchmarks/results/quick/
    python -m benchmarks --report-only [--quick]   # rebuild plots and report from the saved JSON
    python -m benchmarks --steps-only [NAME ...]   # only the scripts whose results the README quotes (README_STEPS)
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vlae_codec.api import coding_model
from vlae_codec.model import VLAEConfig, data, zoo

from . import archive_size, lossy, photo_speed, photos, plots, rates, report, speed
from .common import RESULTS, model_test_set, provenance
from .steps import README_STEPS, run_readme_steps

HERE = Path(__file__).resolve().parent
SECTIONS = ("rates", "archive_size", "speed", "lossy", "photos")
DIGITS = ("bmnist", "mnist")  # data sets the digit classifier can judge
GRID_DIGITS = 20


@dataclass(frozen=True)
class Plan:
    """How much each measurement does; RESULTS.md states every one of these choices."""

    images: dict  # data set -> test images used, a prefix of the shuffled test set (None: all)
    elbo_samples: int  # z samples per image for the float -ELBO
    is_images: dict  # data set -> images for the importance-sampled NLL ...
    is_samples: int  # ... and its samples per image
    counts: tuple[int, ...]  # archive sizes for rate against archive size
    single_files: int  # images coded as single-image files
    lossy_images: int  # digits for the lossy comparison
    lossy_efforts: tuple[int, ...]
    qualities: tuple[int, ...]  # JPEG / WebP / AVIF quality settings
    kodak_photos: tuple[str, ...]  # Kodak photos coded as files by the RGB model
    crop_photo: str  # the photo whose centre crops time decompression against image size
    crop_sizes: tuple[int, ...]
    classic_speed_images: int  # images for PNG / WebP / JPEG-XL encode and decode speed
    photo_limit: int | None  # photos per set for the photo models (None: every photo of the set)
    speed_photos: tuple[str, ...] = ("kodim23",)  # Kodak photos timed against JPEG-XL and WebP, all fresh processes
    seed: int = 0  # of the test-set order


# The full run must fit in 60 minutes on the 2-core machine (benchmarks/README.md has the
# estimate). The importance-sampled NLL (is_samples network passes per image) and the lossy
# comparison are the costly parts, so they get subsets; CIFAR-10 images cost several times
# more per image than MNIST's in every step, so they get 2,000 test images and 200 for the NLL.
FULL = Plan(images={"bmnist": None, "mnist": None, "cifar": 2000}, elbo_samples=10,
            is_images={"bmnist": 1000, "mnist": 1000, "cifar": 200}, is_samples=100,
            counts=(1, 10, 100, 1000, 10000), single_files=100, lossy_images=1000, lossy_efforts=(1, 4, 16),
            qualities=lossy.QUALITIES,
            kodak_photos=("kodim01.png", "kodim05.png", "kodim09.png", "kodim13.png", "kodim17.png", "kodim21.png"),
            crop_photo="kodim01.png", crop_sizes=(32, 64, 128, 256, 512), classic_speed_images=1000,
            photo_limit=None)
QUICK = Plan(images={"bmnist": 300, "mnist": 300, "cifar": 100}, elbo_samples=2,
             is_images={"bmnist": 50, "mnist": 50, "cifar": 20}, is_samples=10,
             counts=(1, 10, 100, 300), single_files=10, lossy_images=200, lossy_efforts=(1, 16),
             qualities=(0, 5, 20, 50, 90), kodak_photos=("kodim01.png",), crop_photo="kodim01.png",
             crop_sizes=(32, 64, 128), classic_speed_images=200, photo_limit=1)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def shuffled_test_set(name: str, plan: Plan, data_dir: str | None) -> tuple[str, np.ndarray, np.ndarray]:
    """A model's data set, its test images in the plan's shuffled order (and count), and that order."""
    dataset, test = model_test_set(name, data_dir)
    order = np.random.default_rng(plan.seed).permutation(len(test))[:plan.images.get(dataset)]
    return dataset, test[order], order


def measure_model(name: str, plan: Plan, threads: int, data_dir: str | None, out_dir: Path) -> dict:
    """Everything the suite measures for one model, by section."""
    label = Path(name).name
    dataset, x, order = shuffled_test_set(name, plan, data_dir)
    binary = bool(x.max() <= 1)
    t_model = time.time()
    log(f"{label}: {len(x):,} {dataset} test images; float model -ELBO and importance-sampled NLL")
    figures = rates.model_figures(name, x, plan.elbo_samples, plan.is_images.get(dataset, 100), plan.is_samples)
    log(f"{label}: the images as one archive (compress and decompress in fresh processes)")
    with tempfile.TemporaryDirectory() as tmp:
        blob, info, timing = speed.archive(name, x, threads, Path(tmp))
    figures.update({k: v for k, v in rates.information(info, x[0].size).items() if k.startswith("coding_")})
    log(f"{label}: classic codecs, single-image files")
    others = rates.other_codecs(x, binary)
    singles = rates.single_files(name, x[:plan.single_files], binary)
    counts = archive_size.counts_for(len(x), plan.counts)
    log(f"{label}: rate against archive size {counts}")
    vlae_rows = archive_size.vlae_counts(name, x, counts, (blob, info, timing))
    bb_name = archive_size.bbans_model(dataset)
    bb_fig = bb_rows = None
    if bb_name:
        log(f"{label}: BB-ANS baseline {bb_name}")
        bb_fig, bb_rows = archive_size.bbans_run(bb_name, x, counts, plan.elbo_samples)
    classic = speed.classic_speed(x[:plan.classic_speed_images], binary, rates.codecs())
    out = {
        "rates": {"model": name, "dataset": dataset, "images": len(x), "binary": binary, "model_figures": figures,
                  "archive": {**rates.archive_figures(blob, info, x), **timing}, "other_codecs": others,
                  "single_files": singles, "bbans": bb_fig},
        "archive_size": {"model": name, "dataset": dataset, "vlae": vlae_rows, "bbans_model": bb_name, "bbans": bb_rows},
        "speed": {"model": name, "archive": timing, "single_file_compress_seconds": singles["compress_seconds_per_image"],
                  "classic": classic,
                  "bbans": None if bb_fig is None else {k: bb_fig[k] for k in ("compress_images_per_second",
                                                                               "decompress_images_per_second")}},
    }
    if dataset in DIGITS:
        out["lossy"] = measure_lossy(name, label, dataset, x, order, plan, data_dir, out_dir)
    if coding_model(name).cfg.channels == 3:
        out.update(measure_rgb(name, label, plan, threads, data_dir))
    out["rates"]["seconds"] = round(time.time() - t_model, 1)
    log(f"{label}: done in {out['rates']['seconds'] / 60:.1f} min")
    return out


def measure_lossy(name: str, label: str, dataset: str, x: np.ndarray, order: np.ndarray, plan: Plan,
                  data_dir: str | None, out_dir: Path) -> dict:
    """vlae-codec's lossy mode against the smallest class-keeping JPEG / WebP / AVIF files, and the grid."""
    xl = x[:plan.lossy_images]
    log(f"{label}: lossy mode on {len(xl):,} digits, efforts {plan.lossy_efforts}")
    judge, classes = lossy.judge_and_classes(xl, data_dir)
    rows, recon = [], None
    for effort in plan.lossy_efforts:
        fig, recon = lossy.vlae_lossy(name, xl, classes, judge, effort)
        rows.append(fig)
    top = max(plan.lossy_efforts)
    grid = [("original", lossy.to_8bit(xl[:GRID_DIGITS])),
            (f"vlae-codec, effort {top}\n{rows[-1]['bytes_per_image']:.1f} B", lossy.to_8bit(recon[:GRID_DIGITS]))]
    classic = {}
    for codec in lossy.available():
        log(f"{label}: smallest {codec} files that keep the class")
        classic[codec], images = lossy.classic_lossy(lossy.to_8bit(xl), classes, judge, codec, plan.qualities)
        grid.append((f"{report.CODEC_NAMES[codec]}, smallest\n{classic[codec]['smallest_kept']['mean_bytes']:.0f} B",
                     images[:GRID_DIGITS]))
    grid_name = f"lossy_grid_{label}.png"
    plots.image_grid(grid, out_dir / grid_name)
    accuracy = None
    if dataset == "mnist":  # binarized MNIST's test images carry no labels
        with np.load(data.data_dir(data_dir) / "mnist.npz", allow_pickle=False) as z:
            labels = z["y_test"][order][:len(xl)]
        accuracy = float(np.mean(lossy.classifier.predict(judge, lossy.to_8bit(xl)) == labels))
    # The classifier is trained on first use and cached outside git: its hash ties the figures to it.
    weights = hashlib.sha256(lossy.classifier.CACHE.read_bytes()).hexdigest()[:16]
    return {"model": name, "images": len(xl), "classifier_sha256": weights,
            "classifier_accuracy_on_originals": accuracy, "vlae": rows,
            "vlae_single_file_bytes": lossy.vlae_single_bytes(name, xl[:GRID_DIGITS], top),
            "vlae_single_images": min(GRID_DIGITS, len(xl)), "vlae_single_effort": top,
            "classic": classic, "grid": grid_name}


def measure_rgb(name: str, label: str, plan: Plan, threads: int, data_dir: str | None) -> dict:
    """Kodak photos as single files through the CLI, and decompression time against image size."""
    folder = data.data_dir(data_dir) / "kodak"
    files = [folder / name for name in plan.kodak_photos if (folder / name).is_file()]
    if len(files) < len(plan.kodak_photos) or not (folder / plan.crop_photo).is_file():
        # Say so in the report rather than end a long run without results.
        return {"missing": f"{label}: the Kodak photos {', '.join(plan.kodak_photos)} are not all in {folder}, "
                           "so there are no Kodak rows and no decompression time against image size."}
    log(f"{label}: {len(files)} Kodak photos through the CLI")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [photos.measure_photo(p, name, threads, tmp) for p in files]
        pixels = [np.asarray(Image.open(p).convert("RGB")) for p in files]
        log(f"{label}: decompression time against image size")
        crop = np.asarray(Image.open(folder / plan.crop_photo).convert("RGB"))
        crops = speed.size_sweep(name, crop, plan.crop_sizes, threads, Path(tmp))
    k = {"model": label, "summary": photos.summarize(rows), "raw": rates.raw_photos(pixels), "photos": rows}
    return {"kodak": k, "crops": crops}


def measure_photo_model(name: str, plan: Plan, threads: int, data_dir: str | None) -> dict:
    """A model trained on a folder of photos: each photo of its sets (Kodak, and the photos it held
    out) as its own file through the CLI, against PNG, WebP and JPEG-XL."""
    label = Path(name).name
    channels = VLAEConfig.load(zoo.resolve(name) / zoo.CONFIG).channels
    out = {}
    for which in photos.SETS_FOR_CHANNELS[channels]:
        files = photos.photos(which, data_dir, plan.photo_limit, model=name)
        log(f"{label}: {len(files)} photos of the set {which} through the CLI")
        with tempfile.TemporaryDirectory() as tmp:
            rows = [photos.measure_photo(f, name, threads, tmp, photos.SETS[which][0]) for f in files]
        out[which] = {"summary": photos.summarize(rows), "photos": rows}
    if channels == 3:
        log(f"{label}: speed against JPEG-XL and WebP, fresh processes")
        kodak = photos.photos("kodak", data_dir, None, model=name)
        picked = [f for f in kodak if f.stem in plan.speed_photos]
        out["speed"] = [photo_speed.measure(f, threads, repeats=1) for f in picked]
    return out


def run(models: list[str], plan: Plan, threads: int, data_dir: str | None, out_dir: Path, command: str) -> dict:
    """Measure every model; the four sections' result dicts."""
    t0 = time.time()
    prov = {**provenance(), "command": command}
    plan_dict = {**dataclasses.asdict(plan), "threads": threads}
    sections = {"rates": {"provenance": prov, "plan": plan_dict, "models": {}, "kodak": None, "missing": []},
                "archive_size": {"provenance": prov, "models": {}},
                "speed": {"provenance": prov, "threads": threads, "models": {}, "kodak": None, "crops": {}},
                "lossy": {"provenance": prov, "models": {}},
                "photos": {"provenance": prov, "threads": threads, "models": {}}}
    shipped = zoo.shipped_models()
    if "cifar" not in shipped:
        sections["rates"]["missing"].append(
            f"the RGB model `cifar` is not shipped yet (shipped: {', '.join(shipped)}), so this run has no CIFAR-10 "
            "rows, no Kodak rows and no decompression time against image size. They appear once `cifar` is in "
            "`vlae_codec.model.zoo.shipped_models()`.")
    for name in models:
        label = Path(name).name
        if "images" in json.loads((zoo.resolve(name) / zoo.LOG).read_text()):  # trained on a folder of photos
            sections["photos"]["models"][label] = measure_photo_model(name, plan, threads, data_dir)
            continue
        m = measure_model(name, plan, threads, data_dir, out_dir)
        for section in ("rates", "archive_size", "speed", "lossy"):
            if section in m:
                sections[section]["models"][label] = m[section]
        if "missing" in m:
            sections["rates"]["missing"].append(m["missing"])
        if "kodak" in m:
            sections["rates"]["kodak"] = {k: v for k, v in m["kodak"].items()}
            sections["speed"]["kodak"] = {"model": label, "photos": m["kodak"]["photos"]}
            sections["speed"]["crops"][label] = m["crops"]
    sections["rates"]["run_seconds"] = round(time.time() - t0, 1)
    return sections


def write_json(path: Path, obj: dict) -> None:
    """A JSON file, written whole or not at all."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o)) + "\n")
    os.replace(tmp, path)


def make_plots(sections: dict, out_dir: Path) -> None:
    """rates.png, archive_size.png, decode_time.png and lossy_tradeoff.png (the lossy grids are
    drawn while measuring, as they need the images)."""
    short = {k: label.replace("**", "").replace(", real file size", "").replace(", the test images as one archive",
                                                                              ", one archive")
             for k, label, _ in report.ROWS}
    cols = [(t, {short[k]: v for k, v in vals.items() if dict((r[0], r[2]) for r in report.ROWS)[k]})
            for t, vals in report.rate_columns(sections["rates"])]
    if cols:
        plots.rates(cols, out_dir / "rates.png")
    arch = sections["archive_size"].get("models", {})
    if arch:
        panels = []
        for label, m in arch.items():
            lines = {"vlae-codec": [(r["images"], r["bits_per_dim"]) for r in m["vlae"]]}
            if m.get("bbans"):
                lines["BB-ANS (MLP VAE)"] = [(r["images"], r["bits_per_dim"]) for r in m["bbans"]]
            r = sections["rates"].get("models", {}).get(label, {})
            asymptotes = {"vlae-codec, coding model -ELBO": r.get("model_figures", {}).get("coding_neg_elbo_bits_per_dim"),
                          "BB-ANS, coding model -ELBO": (r.get("bbans") or {}).get("coding_neg_elbo_bits_per_dim")}
            panels.append((f"{label} ({report.DATASET_NAMES.get(m['dataset'], m['dataset'])})", lines,
                           {k: v for k, v in asymptotes.items() if v is not None}))
        plots.archive_size(panels, out_dir / "archive_size.png")
        lines = {}
        for label, m in arch.items():
            lines[f"vlae-codec, {label}"] = [(r["images"], r["decompress_seconds"]) for r in m["vlae"]]
            if m.get("bbans"):
                lines[f"BB-ANS, {label}"] = [(r["images"], r["decompress_seconds"]) for r in m["bbans"]]
        panels = [("against images per archive", "images in one archive", lines)]
        for label, rows in (sections["speed"].get("crops") or {}).items():
            panels.append((f"against image size ({label}, one image)", "pixels per image",
                           {f"vlae-codec, {label}": [(r["pixels"], r["decompress_seconds"]) for r in rows]}))
        plots.decode_time(panels, out_dir / "decode_time.png")
    lossy_models = sections["lossy"].get("models", {})
    if lossy_models:
        panels = []
        for label, m in lossy_models.items():
            lines = {f"vlae-codec, effort {r['effort']}": [(r["bytes_per_image"], r["class_agreement"])]
                     for r in m["vlae"]}
            for codec, c in m["classic"].items():
                name = report.CODEC_NAMES[codec]
                lines[f"{name}, by quality"] = [(q["mean_bytes"], q["class_agreement"]) for q in c["per_quality"]]
                lines[f"{name}, smallest keeping the class"] = [(c["smallest_kept"]["mean_bytes"],
                                                                 c["smallest_kept"]["class_agreement"])]
            panels.append((label, lines))
        plots.lossy_tradeoff(panels, out_dir / "lossy_tradeoff.png")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small subsets, a few minutes; writes under results/quick/")
    ap.add_argument("--threads", type=int, default=2, help="torch threads, here and in every child process")
    ap.add_argument("--data-dir", default=None, help="data folder [default: $VLAE_DATA, else ../shared/data]")
    ap.add_argument("--models", nargs="*", default=None,
                    help="shipped names or model folders [default: every shipped model]")
    ap.add_argument("--report-only", action="store_true", help="rebuild plots and RESULTS.md from the saved JSON")
    ap.add_argument("--no-steps", action="store_true", help="skip the README's scripts (README_STEPS) after the full run")
    ap.add_argument("--steps-only", nargs="*", default=None, choices=list(README_STEPS), metavar="NAME",
                    help=f"run only these README steps (all if none named): {', '.join(README_STEPS)}")
    args = ap.parse_args(argv)
    if args.steps_only is not None:
        run_readme_steps(args.steps_only or list(README_STEPS), args.data_dir)
        return
    torch.set_num_threads(args.threads)
    plan = QUICK if args.quick else FULL
    out_dir = RESULTS / "quick" if args.quick else RESULTS
    report_path = out_dir / "RESULTS.md" if args.quick else HERE / "RESULTS.md"
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.quick:  # a smoke run's outputs are not results: keep them out of git
        (out_dir / ".gitignore").write_text("*\n")
    if args.report_only:
        sections = {s: json.loads((out_dir / f"{s}.json").read_text()) for s in SECTIONS
                    if (out_dir / f"{s}.json").is_file()}
        if "rates" not in sections:
            raise SystemExit(f"no results in {out_dir}: run the suite first")
    else:
        models = args.models if args.models is not None else zoo.shipped_models()
        sections = run(models, plan, args.threads, args.data_dir, out_dir,
                       " ".join(["python -m benchmarks", *argv]))
        for s in SECTIONS:
            write_json(out_dir / f"{s}.json", sections[s])
    make_plots(sections, out_dir)

    def link(name: str) -> str:
        return os.path.relpath(out_dir / name, report_path.parent)

    report_path.write_text(report.render(sections, link, args.quick, sections["rates"].get("run_seconds")))
    log(f"wrote {report_path} and {out_dir}/*.json, *.png")
    if not (args.quick or args.report_only or args.no_steps or args.models is not None):
        run_readme_steps(list(README_STEPS), args.data_dir)


if __name__ == "__main__":
    main()
