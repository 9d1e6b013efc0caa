"""RESULTS.md from the suite's result dicts: tables, plot links, the run's budget, and where
vlae-codec loses. Pure functions of the dicts, so the report can be rebuilt without measuring."""

from __future__ import annotations

from .photo_speed import table as photo_speed_table

# Rows of the rate table: key, label, and whether it is a codec (a file one can write) rather
# than a model's estimate of the rate.
ROWS = [
    ("vlae", "**vlae-codec**, real file size, the test images as one archive", True),
    ("vlae_single", "vlae-codec, real file size, single-image files", True),
    ("coding_neg_elbo", "vlae-codec's coding model, -ELBO", False),
    ("float_neg_elbo", "float model, -ELBO", False),
    ("nll_is", "float model, importance-sampled NLL (subset)", False),
    ("bbans", "BB-ANS (MLP VAE), real file size, one archive", True),
    ("png_single", "PNG, single files", True),
    ("png_mosaic", "PNG, one mosaic", True),
    ("webp_single", "WebP lossless, single files", True),
    ("webp_mosaic", "WebP lossless, one mosaic", True),
    ("jxl_single", "JPEG-XL lossless, single files", True),
    ("jxl_mosaic", "JPEG-XL lossless, one mosaic", True),
    ("gzip_raw", "gzip -9, raw array", True),
    ("bz2_raw", "bz2 -9, raw array", True),
    ("lzma_raw", "lzma -9e, raw array", True),
]
LABELS = {k: label for k, label, _ in ROWS}
SINGLE = ("png_single", "webp_single", "jxl_single")
CODEC_NAMES = {"png": "PNG", "webp": "WebP", "jxl": "JPEG-XL", "jpeg": "JPEG", "avif": "AVIF"}
DATASET_NAMES = {"bmnist": "binarized MNIST", "mnist": "MNIST", "cifar": "CIFAR-10"}


def _fmt(v: float | None, digits: int = 4) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def column_title(label: str, m: dict) -> str:
    """A rate-table column: the data set, and the model when it is not named after it."""
    ds = DATASET_NAMES.get(m["dataset"], m["dataset"])
    return ds if label == m["dataset"] else f"{ds} ({label})"


def rate_columns(rates: dict) -> list[tuple[str, dict[str, float]]]:
    """(column title, {row key: bits/dim}) per data set, from rates.json; rows without a figure are left out."""
    cols = []
    for label, m in rates.get("models", {}).items():
        f, o, s = m["model_figures"], m["other_codecs"], m["single_files"]
        v = {"vlae": m["archive"]["real_bits_per_dim"], "vlae_single": s.get("bits_per_dim"),
             "coding_neg_elbo": f.get("coding_neg_elbo_bits_per_dim"), "float_neg_elbo": f.get("neg_elbo_bits_per_dim"),
             "nll_is": f.get("nll_is_bits_per_dim"),
             "bbans": (m.get("bbans") or {}).get("file_bits_per_dim")}
        for codec in ("png", "webp", "jxl"):
            v[f"{codec}_single"] = o.get(f"{codec}_single_files_bits_per_dim")
            v[f"{codec}_mosaic"] = o.get(f"{codec}_mosaic_bits_per_dim")
        for raw in ("gzip", "bz2", "lzma"):
            v[f"{raw}_raw"] = o.get(f"{raw}_raw_array_bits_per_dim")
        cols.append((f"{column_title(label, m)}, {m['images']:,} images", {k: x for k, x in v.items() if x is not None}))
    k = rates.get("kodak")
    if k:
        s = k["summary"]
        v = {"vlae_single": s.get("bits_per_dim")}
        for codec in ("png", "webp", "jxl"):
            v[f"{codec}_single"] = s.get(f"{codec}_bits_per_dim")
        for raw in ("gzip", "bz2", "lzma"):
            v[f"{raw}_raw"] = k.get("raw", {}).get(f"{raw}_raw_array_bits_per_dim")
        cols.append((f"Kodak ({k['model']}), {s['photos']} photos", {k2: x for k2, x in v.items() if x is not None}))
    return cols


def rate_losses(cols: list[tuple[str, dict[str, float]]]) -> list[str]:
    """Every codec that beats vlae-codec on a data set, with the margin: the archive against all
    codecs, and single-image files against the others' single-image files (like for like)."""
    out = []
    for title, v in cols:
        for ours, theirs in (("vlae", [k for k, _, codec in ROWS if codec and k not in ("vlae", "vlae_single")]),
                             ("vlae_single", [*SINGLE, "gzip_raw", "bz2_raw", "lzma_raw"] if "vlae" not in v
                              else list(SINGLE))):
            if ours in v:
                out += [_beats(title, v, k, ours) for k in theirs if k in v and v[k] < v[ours]]
    return out


def _beats(title: str, v: dict[str, float], k: str, ours: str) -> str:
    """The sentence for codec k's bits/dim beating ours in column v."""
    d = v[ours] - v[k]
    return (f"{title}: {LABELS[k]} ({v[k]:.4f} bits/dim) beats {LABELS[ours].replace('**', '')} "
            f"({v[ours]:.4f}) by {d:.4f} bits/dim; vlae-codec's files are {100 * d / v[k]:.1f}% larger.")


def count_losses(archive: dict) -> list[str]:
    """Archive sizes at which the BB-ANS baseline's file is smaller than vlae-codec's."""
    out = []
    for label, m in archive.get("models", {}).items():
        theirs = {r["images"]: r["bits_per_dim"] for r in m.get("bbans") or []}
        out += [_bbans_beats(label, r, theirs[r["images"]]) for r in m["vlae"]
                if theirs.get(r["images"], float("inf")) < r["bits_per_dim"]]
    return out


def _bbans_beats(label: str, r: dict, b: float) -> str:
    """The sentence for BB-ANS's b bits/dim beating vlae-codec's archive r."""
    d = r["bits_per_dim"] - b
    return (f"{label}, {r['images']:,} image(s) in one archive: BB-ANS {b:.4f} bits/dim beats "
            f"vlae-codec's {r['bits_per_dim']:.4f} by {d:.4f} ({100 * d / b:.1f}%).")


def speed_losses(speed: dict) -> list[str]:
    """Codecs that encode or decode the same images faster than vlae-codec, and how many times faster."""
    out = []
    for label, m in speed.get("models", {}).items():
        a = m["archive"]
        ours = {"compress": a["compress_images_per_second"], "decompress": a["decompress_images_per_second"]}
        others = [(f"{CODEC_NAMES.get(codec, codec)} (single files)",
                   {"compress": c["encode_images_per_second"], "decompress": c["decode_images_per_second"]})
                  for codec, c in (m.get("classic") or {}).items()]
        if m.get("bbans"):
            others.append(("the BB-ANS baseline (one archive)", {"compress": m["bbans"]["compress_images_per_second"],
                                                                 "decompress": m["bbans"]["decompress_images_per_second"]}))
        for name, theirs in others:
            faster = [f"{way}es {theirs[way]:,.0f} images/s, {theirs[way] / ours[way]:.1f}x vlae-codec's {ours[way]:,.1f}"
                      for way in ("compress", "decompress") if theirs[way] > ours[way]]
            if faster:
                out.append(f"{label}: {name} " + "; and ".join(faster) + ".")
    return out


def lossy_losses(lossy: dict) -> list[str]:
    """Classic lossy codecs that keep the digit's class more often than vlae-codec's lossy mode, or
    make smaller files."""
    out = []
    for label, m in lossy.get("models", {}).items():
        best = max(m["vlae"], key=lambda r: r["class_agreement"])
        for codec, c in m.get("classic", {}).items():
            s = c["smallest_kept"]
            name = CODEC_NAMES.get(codec, codec)
            if s["class_agreement"] > best["class_agreement"]:
                out.append(f"{label}: {name} keeps the class of {_pct(s['class_agreement'])} of the digits, "
                           f"vlae-codec's lossy mode {_pct(best['class_agreement'])} (effort {best['effort']}); "
                           f"but {name}'s files are {s['mean_bytes']:.0f} bytes per digit against "
                           f"{best['bytes_per_image']:.1f} (one archive) or {m['vlae_single_file_bytes']:.1f} "
                           "(single files, header included).")
            if s["mean_bytes"] < best["bytes_per_image"]:
                out.append(f"{label}: {name}'s smallest class-keeping files ({s['mean_bytes']:.1f} bytes) are smaller "
                           f"than vlae-codec's lossy archive ({best['bytes_per_image']:.1f} bytes per digit).")
    return out


def photo_losses(photos: dict) -> list[str]:
    """Photo sets where JPEG-XL is smaller, and the time vlae-codec takes against JPEG-XL's."""
    out = []
    for label, sets in photos.get("models", {}).items():
        for which, m in sets.items():
            if which == "speed":
                continue
            s = m["summary"]
            if s.get("jxl_bits_per_dim") is None:
                continue
            if s["bits_per_dim"] >= s["jxl_bits_per_dim"]:
                out.append(f"{label} on {which}: {s['bits_per_dim']:.4f} bits/dim against JPEG-XL's "
                           f"{s['jxl_bits_per_dim']:.4f} (smaller on {s['below_jxl']} of {s['photos']} photos)")
            out.append(f"{label} on {which}: {s['compress_seconds'] / s['jxl_encode_seconds']:.0f}x JPEG-XL's encode "
                       f"time and {s['decompress_seconds'] / s['jxl_decode_seconds']:.0f}x its decode time per photo")
    return out


def losses(sections: dict) -> list[str]:
    """Every place the numbers show vlae-codec losing, as sentences."""
    return (rate_losses(rate_columns(sections.get("rates", {}))) + count_losses(sections.get("archive_size", {}))
            + lossy_losses(sections.get("lossy", {})) + speed_losses(sections.get("speed", {}))
            + photo_losses(sections.get("photos", {})))


def _provenance(p: dict, seconds: float | None) -> list[str]:
    lines = [f"Command: `{p['command']}`  ", f"Date: {p['date']}  ", f"Commit: {p['commit']}  ",
             f"Machine: {p['machine']}, Python {p['python']}, torch {p['torch']} ({p['torch_threads']} threads)  "]
    if seconds is not None:
        lines.append(f"Run time: {seconds / 60:.1f} minutes")
    return lines


def _per_dataset(counts: dict) -> str:
    return ", ".join(f"{n:,} ({DATASET_NAMES.get(d, d)})" for d, n in counts.items())


def _budget(plan: dict) -> list[str]:
    images = ", ".join(f"{DATASET_NAMES.get(d, d)}: {'all' if n is None else f'the first {n:,}'}"
                       for d, n in plan["images"].items())
    return [
        f"- Test images ({images}) are taken in one fixed shuffled order (numpy `default_rng({plan['seed']})`): "
        "binarized MNIST's test set is stored sorted by class, which would flatter the mosaic and raw-array rows "
        "and make the first images of an archive unrepresentative. Every subset below is a prefix of that order.",
        f"- Float model: -ELBO over all those images with {plan['elbo_samples']} z sample(s) each; importance-sampled "
        f"NLL with {plan['is_samples']} samples on the first {_per_dataset(plan['is_images'])} images only (its cost "
        f"is {plan['is_samples']} network passes per image), next to the -ELBO of the same subset.",
        "- Coding model -ELBO: the mean information content that the coder actually wrote for the images coded "
        "with bits back (all but the clean-start image), on the z it drew; no separate pass.",
        f"- Archive sizes: {', '.join(f'{c:,}' for c in plan['counts'])} (capped at the images used), the first n "
        "images of the order above; each archive is decoded and checked.",
        f"- Single-image files: the first {plan['single_files']} images, each as its own file.",
        f"- Lossy: the first {plan['lossy_images']:,} digits, vlae-codec efforts {', '.join(map(str, plan['lossy_efforts']))}; "
        f"JPEG / WebP / AVIF at qualities {', '.join(map(str, plan['qualities']))}.",
        f"- RGB model (when one is measured): Kodak photos {', '.join(plan['kodak_photos']) or 'none'}; square centre crops of "
        f"{', '.join(map(str, plan['crop_sizes']))} pixels of {plan['crop_photo']} for decompression time against size.",
        f"- Speed: torch threads {plan['threads']}; every vlae-codec compression and decompression of a whole "
        "test archive, a crop or a Kodak photo runs in a fresh process, whose peak resident memory is reported; "
        "times exclude Python start-up and model loading except for Kodak photos, which are timed as the "
        "`vlae-codec compress` / `decompress` commands a user runs.",
    ]


def _rate_table(cols: list[tuple[str, dict[str, float]]]) -> list[str]:
    lines = ["| bits/dim | " + " | ".join(t for t, _ in cols) + " |", "| --- |" + " ---: |" * len(cols)]
    for key, label, _ in ROWS:
        if any(key in v for _, v in cols):
            lines.append(f"| {label} | " + " | ".join(_fmt(v.get(key)) for _, v in cols) + " |")
    return lines


def _model_details(rates: dict) -> list[str]:
    lines = ["| model | images | real / information | header bytes | clean start (bits) | -ELBO on NLL subset "
             "| NLL (subset) | single file: bytes, header |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for label, m in rates.get("models", {}).items():
        a, f, s = m["archive"], m["model_figures"], m["single_files"]
        lines.append(f"| {label} | {m['images']:,} | {a['real_over_neg_elbo']:.5f} | {a['header_bytes']} | "
                     f"{a['clean_start_bits']:.1f} | {_fmt(f.get('is_subset_neg_elbo_bits_per_dim'))} "
                     f"({f['is_images']:,} images) | {_fmt(f.get('nll_is_bits_per_dim'))} ({f['is_samples']} samples) | "
                     f"{s['mean_bytes']:.1f}, {s['mean_header_bytes']:.1f} |")
    return lines


def _archive_table(archive: dict) -> list[str]:
    lines = []
    for label, m in archive.get("models", {}).items():
        b = {r["images"]: r for r in m.get("bbans") or []}
        lines += [f"**{label}** ({DATASET_NAMES.get(m['dataset'], m['dataset'])}):", "",
                  "| images in one archive | vlae-codec bits/dim | BB-ANS bits/dim | vlae-codec file mode "
                  "| vlae-codec compress / decompress s | BB-ANS compress / decompress s |",
                  "| ---: | ---: | ---: | --- | ---: | ---: |"]
        for r in m["vlae"]:
            o = b.get(r["images"])
            lines.append(f"| {r['images']:,} | {r['bits_per_dim']:.4f} | {_fmt(o and o['bits_per_dim'])} | {r['mode']} | "
                         f"{r['compress_seconds']:.2f} / {r['decompress_seconds']:.2f} | "
                         + (f"{o['compress_seconds']:.2f} / {o['decompress_seconds']:.2f}" if o else "n/a") + " |")
        lines.append("")
    return lines


def _speed_tables(speed: dict) -> list[str]:
    lines = ["| model | images | compress images/s | decompress images/s | peak MiB compress / decompress "
             "| one image as its own file, compress s | BB-ANS compress / decompress images/s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, m in speed.get("models", {}).items():
        a, b = m["archive"], m.get("bbans")
        lines.append(f"| {label} | {a['images']:,} | {a['compress_images_per_second']:,.1f} | "
                     f"{a['decompress_images_per_second']:,.1f} | {a['compress_peak_mib']:.0f} / {a['decompress_peak_mib']:.0f} | "
                     f"{_fmt(m.get('single_file_compress_seconds'), 3)} | "
                     + (f"{b['compress_images_per_second']:,.0f} / {b['decompress_images_per_second']:,.0f}" if b else "n/a")
                     + " |")
    classic = [(label, codec, c) for label, m in speed.get("models", {}).items()
               for codec, c in (m.get("classic") or {}).items()]
    if classic:
        lines += ["", "Classic lossless codecs on the same images, each image its own file, in the suite's own "
                  "process (no peak memory: they are C libraries with no model to load):", "",
                  "| model | codec | images | encode images/s | decode images/s |", "| --- | --- | ---: | ---: | ---: |"]
        lines += [f"| {label} | {CODEC_NAMES.get(codec, codec)} | {c['images']:,} | {c['encode_images_per_second']:,.0f} | "
                  f"{c['decode_images_per_second']:,.0f} |" for label, codec, c in classic]
    k = speed.get("kodak")
    if k:
        lines += ["", f"Kodak photos with `{k['model']}`, each its own file, timed as whole `vlae-codec` commands "
                  "(Python start-up and model loading included):", "",
                  "| photo | size | bits/dim | compress s | decompress s | peak MiB | exact |",
                  "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
        lines += [f"| {r['photo']} | {r['width']}x{r['height']} | {r['bits_per_dim']:.4f} | {r['compress_seconds']:.1f} | "
                  f"{r['decompress_seconds']:.1f} | {max(r['compress_peak_mib'], r['decompress_peak_mib']):.0f} | "
                  f"{r['round_trip_exact']} |" for r in k["photos"]]
    for label, rows in (speed.get("crops") or {}).items():
        lines += ["", f"Decompression time against image size ({label}, square centre crops of one Kodak photo, "
                  "one image per file, fresh process each):", "",
                  "| side | pixels | bits/dim | compress s | decompress s | decompress peak MiB |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {r['side']} | {r['pixels']:,} | {r['bits_per_dim']:.4f} | {r['compress_seconds']:.2f} | "
                  f"{r['decompress_seconds']:.2f} | {r['decompress_peak_mib']:.0f} |" for r in rows]
    return lines


def _photo_tables(photos: dict) -> list[str]:
    lines = ["Each photo its own file; means over the photos of each set. vlae-codec's times are whole commands "
             "(Python start-up and model loading included); the classic codecs' are Pillow calls in one process.", "",
             "| model | set | photos | vlae-codec bits/dim | JPEG-XL | WebP | PNG | vlae / JPEG-XL | below JPEG-XL "
             "| vlae-codec compress / decompress s | JPEG-XL encode / decode s | peak MiB | exact |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for label, sets in photos.get("models", {}).items():
        for which, m in sets.items():
            if which == "speed":
                continue
            s = m["summary"]
            ratio = s["bits_per_dim"] / s["jxl_bits_per_dim"] if s.get("jxl_bits_per_dim") else None
            lines.append(f"| {label} | {which} | {s['photos']} | {_fmt(s['bits_per_dim'])} | {_fmt(s.get('jxl_bits_per_dim'))} "
                         f"| {_fmt(s.get('webp_bits_per_dim'))} | {_fmt(s.get('png_bits_per_dim'))} | {_fmt(ratio, 3)} | "
                         f"{s['below_jxl']} of {s['photos']} | {s['compress_seconds']:.1f} / {s['decompress_seconds']:.1f} | "
                         f"{_fmt(s.get('jxl_encode_seconds'), 2)} / {_fmt(s.get('jxl_decode_seconds'), 3)} | "
                         f"{s['max_peak_mib']:.0f} | {s['all_exact']} |")
    for label, sets in photos.get("models", {}).items():
        if sets.get("speed"):
            lines += ["", f"Speed of `{label}` against JPEG-XL and WebP, every codec a whole command in a fresh process "
                      "(benchmarks/photo_speed.py):", "", photo_speed_table(sets["speed"])]
    return lines


def _lossy_tables(lossy: dict, link) -> list[str]:
    lines = []
    for label, m in lossy.get("models", {}).items():
        acc = m.get("classifier_accuracy_on_originals")
        lines += [f"**{label}** ({m['images']:,} test digits; classifier weights sha256 "
                  f"{m.get('classifier_sha256', 'n/a')}, " + ("these test images carry no labels" if acc is None else
                                                              f"right on {_pct(acc)} of the originals' labels") + "):", "",
                  "| codec | setting | bytes per digit | class agreement |", "| --- | --- | ---: | ---: |"]
        for r in m["vlae"]:
            lines.append(f"| vlae-codec lossy, one archive (header shared) | effort {r['effort']} | "
                         f"{r['bytes_per_image']:.2f} | {_pct(r['class_agreement'])} |")
        lines.append(f"| vlae-codec lossy, single files (header included; {m['vlae_single_images']} digits) | "
                     f"effort {m['vlae_single_effort']} | "
                     f"{m['vlae_single_file_bytes']:.1f} | (same codes as the archive) |")
        for codec, c in m.get("classic", {}).items():
            s, low = c["smallest_kept"], c["per_quality"][0]
            name = CODEC_NAMES.get(codec, codec)
            lines.append(f"| {name}, smallest file keeping the class | per digit (median quality "
                         f"{s['median_quality']:g}) | {s['mean_bytes']:.1f} | {_pct(s['class_agreement'])} |")
            lines.append(f"| {name}, lowest quality | quality {low['quality']} | {low['mean_bytes']:.1f} | "
                         f"{_pct(low['class_agreement'])} |")
        lines += ["", f"![lossy grid, {label}]({link(m['grid'])}) (rows: originals, vlae-codec lossy, then the "
                  "smallest class-keeping JPEG, WebP and AVIF files)", ""]
    return lines


def render(sections: dict, link, quick: bool, seconds: float | None) -> str:
    """The whole RESULTS.md. `sections` maps "rates", "archive_size", "speed", "lossy" to their
    result dicts; `link(name)` gives a plot's path relative to the report."""
    rates = sections.get("rates", {})
    p = rates.get("provenance") or next(s["provenance"] for s in sections.values() if "provenance" in s)
    plan = rates.get("plan", {})
    cols = rate_columns(rates)
    md = ["# vlae-codec benchmark results" + (" (QUICK MODE: a smoke run on small subsets, not the results)"
                                              if quick else ""), ""]
    md += _provenance(p, seconds) + [""]
    md += ["Every number below was written by the command above on this machine; rerun it to reproduce them "
           "(rates exactly, times roughly). Bits/dim count every byte of each file: header, clean start, "
           "payload and checksum.", ""]
    for note in rates.get("missing", []):
        md += [f"**Missing:** {note}", ""]
    md += ["## Where vlae-codec loses", "", "Generated from the numbers below:", ""]
    md += [f"- {s}" for s in losses(sections)] or ["- nowhere in this run's comparisons"]
    md += ["", "## Rates", "", f"![rate per codec per data set]({link('rates.png')})", ""]
    md += _rate_table(cols) + [""]
    if rates.get("models"):
        md += _model_details(rates) + [""]
    md += ["## Rate against archive size", "",
           "One archive of the first n test images; the first image has no bits to pop (the clean start, "
           "coded without bits back), so small archives pay more per image. Both codecs write the project's "
           "container (header, payload, CRC).", "", f"![rate against archive size]({link('archive_size.png')})", ""]
    md += _archive_table(sections.get("archive_size", {}))
    md += ["## Speed and memory", "", f"![decompression time]({link('decode_time.png')})", ""]
    md += _speed_tables(sections.get("speed", {})) + [""]
    md += ["## Lossy mode", "",
           "Bytes per digit against the share of digits to which a small CNN digit classifier "
           "(`benchmarks/classifier.py`) gives the class it gives the original. JPEG, WebP and AVIF files are "
           "whole single-image files, container headers included, as vlae-codec's single files are; vlae-codec's "
           "archive shares one header among all digits. For each digit the smallest classic file "
           "(over the quality settings) that keeps the class is taken; a digit that no setting keeps counts "
           "as a disagreement at the highest quality's size.", "",
           f"![bytes against class agreement]({link('lossy_tradeoff.png')})", ""]
    md += _lossy_tables(sections.get("lossy", {}), link)
    if sections.get("photos", {}).get("models"):
        md += ["## Photos", ""] + _photo_tables(sections["photos"]) + [""]
    if plan:
        md += ["## How this run was budgeted", ""] + _budget(plan) + [""]
    return "\n".join(md) + "\n"
