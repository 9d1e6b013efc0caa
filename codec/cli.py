"""The vlae-codec command line."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import click
import numpy as np

from . import api, baselines, container, images
from .console import progress as _progress, set_threads as _set_threads
from .errors import CodecError, InputError
from .model.cli import COMMANDS as MODEL_COMMANDS
from .model.interface import ModelError


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"vlae-codec: error: {message}", err=True)
    sys.exit(code)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


class _Group(click.Group):
    """Turns every expected failure into a one-line message and a non-zero exit."""

    def invoke(self, ctx):
        # A polite kill (SIGTERM) unwinds like Ctrl-C, so half-written temporary files are removed.
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            return super().invoke(ctx)
        except (CodecError, ModelError) as e:
            _fail(str(e))
        except KeyboardInterrupt:
            _fail("interrupted; no output was written", 130)
        except OSError as e:  # the file system's refusals: permissions, a full disk, a name it cannot hold
            _fail(f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}")
        except MemoryError:
            _fail("out of memory; try a smaller --batch-size or fewer images per call", 3)


def _pixel_progress(imgs: images.Images, desc: str, enabled: bool):
    """A bar over pixel positions: big photos move it as steadily as big archives."""
    return _progress(int(np.prod(imgs.pixels.shape[:3])), desc, enabled, "px")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vlae-codec")
def main() -> None:
    """Lossless and lossy image compression with a Variational Lossy Autoencoder and bits-back ANS.

    \b
    Try:  vlae-codec compress digit.png       (writes digit.vlae)
          vlae-codec decompress digit.vlae    (writes digit.png)
          vlae-codec measure digits.npy       (real bits/dim next to the ELBO and other codecs)
    """


# ------------------------------------------------------------------ codec commands
_batch_option = click.option("--batch-size", type=int, default=api.DEFAULT_BATCH, show_default=True,
                             help="Images per network evaluation (memory vs speed; files are the same).")
_device_option = click.option("--device", default=None,
                              help="Torch device for the networks: cpu, cuda or cuda:N (speed only; files are "
                                   "the same on any) [default: cpu].")


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.option("-o", "--output", type=click.Path(), default=None, help="Output file [default: INPUT with .vlae].")
@click.option("--model", default=None, help="Model name or folder [default: chosen from the input].")
@click.option("--lossy", is_flag=True, help="Keep only the global code; decompression generates the image.")
@click.option("--seed", type=int, default=None,
              help="Lossy: sample pixels with this seed instead of taking each pixel's mean.")
@click.option("--effort", type=click.IntRange(1, api.MAX_EFFORT), default=api.DEFAULT_EFFORT, show_default=True,
              help="Lossy: codes tried per image; the closest reconstruction is kept (time grows with it).")
@click.option("--offsets/--no-offsets", default=True, show_default=True,
              help="Lossless: fit the pixel distributions to the input and store the fit in the file (a few "
                   "seconds; kept only where it saves bytes).")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: the file's size next to the coding "
                                                      "model's -ELBO of what it codes.")
@click.option("--shard-size", type=click.IntRange(1), default=None,
              help="Write independent archives of at most this many images, and an index, into a folder "
                   "[default OUTPUT: INPUT with .shards].")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="With --shard-size: processes compressing shards at once [default: CPU cores].")
@_batch_option
@_device_option
@click.option("--threads", type=int, default=None, help="Torch CPU threads.")
def compress(input_path, output, model, lossy, seed, effort, offsets, force, as_json, shard_size, workers,
             batch_size, device, threads) -> None:
    """Compress an image (PNG, TIFF, BMP, PPM/PGM, WebP, JPEG; any mode: 1-bit, greyscale, RGB, with
    alpha, palette, 16-bit), a folder of PNGs, or an .npy array (N,H,W[,C]) into one .vlae file
    (or, with --shard-size, into a folder of independent archives)."""
    _set_threads(threads)
    api.check_device(device)
    if shard_size is not None:
        _compress_shards(Path(input_path), output, model, lossy, seed, effort, offsets, force, shard_size, workers,
                         batch_size, device)
        return
    out = Path(output) if output else api.default_output(Path(input_path), True)
    images.refuse_overwrite(out, force)
    imgs = images.read(input_path)
    if isinstance(imgs, images.Mixed):
        _compress_mixed(imgs, out, model, lossy, seed, effort, offsets, force, as_json, batch_size, device)
        return
    if imgs.format == "JPEG":
        click.echo("vlae-codec: note: a JPEG is coded as its decoded pixels: the result is lossless for the "
                   "pixels, not for the JPEG file", err=True)
    bar, tick = _pixel_progress(imgs, "compress", sys.stderr.isatty() and imgs.pixels.size > 100_000)
    encoded = api.encode(imgs, model=model, lossy=lossy, seed=seed, batch=batch_size, progress=tick,
                         effort=effort, device=device, offsets=offsets)
    bar.close()
    api.write_file(encoded.data, out, force)
    size, dims = out.stat().st_size, imgs.pixels.size
    header, words = container.unpack(encoded.data)
    result = {"output": str(out), "model": header.model_id, "mode": header.mode, "images": len(imgs.pixels),
              "subpixels": int(dims), "bytes": size, "header_bytes": size - header.payload_bytes,
              "bits_per_dim": 8 * size / dims,
              "neg_elbo_bits_per_dim": None if encoded.info is None else float(encoded.info.total.sum() / dims)}
    if as_json:
        click.echo(json.dumps(result))
        return
    elbo = "" if result["neg_elbo_bits_per_dim"] is None else (
        f" (the coding model's -ELBO: {result['neg_elbo_bits_per_dim']:.4f} bits/dim)")
    click.echo(f"{out}: {size} bytes, {len(imgs.pixels)} image(s), {8 * size / dims:.4f} bits/dim{elbo}")


def _compress_mixed(imgs: images.Mixed, out: Path, model, lossy, seed, effort, offsets, force, as_json, batch_size,
                    device) -> None:
    """A folder of several kinds of image: one archive, a part per kind."""
    encoded = api.encode(imgs, model=model, lossy=lossy, seed=seed, batch=batch_size, effort=effort, device=device,
                         offsets=offsets)
    api.write_file(encoded.data, out, force)
    size, dims = out.stat().st_size, sum(g.pixels.size for g in imgs.groups)
    count = sum(len(g.pixels) for g in imgs.groups)
    result = {"output": str(out), "model": None, "mode": "mixed", "images": count, "parts": len(imgs.groups),
              "subpixels": int(dims), "bytes": size, "bits_per_dim": 8 * size / dims, "neg_elbo_bits_per_dim": None}
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{out}: {size} bytes, {count} image(s) of {len(imgs.groups)} kinds ({imgs.kinds()}), "
               f"{8 * size / dims:.4f} bits/dim")


def _compress_shards(src: Path, output, model, lossy, seed, effort, offsets, force, shard_size, workers,
                     batch_size, device) -> None:
    from . import shards

    out = Path(output) if output else src.with_name(src.name.rstrip("/")).with_suffix(".shards")
    images.refuse_overwrite(out, force)
    imgs = images.read(src)
    if isinstance(imgs, images.Mixed):
        raise InputError(f"{src}: --shard-size takes images of one kind, and this folder mixes {imgs.kinds()}: "
                         "compress it as one archive (without --shard-size), or shard each kind in its own folder")
    workers = workers or os.cpu_count() or 1
    index = shards.compress(imgs, out, shard_size, workers, force, model=model, lossy=lossy, seed=seed,
                            effort=effort, batch=batch_size, device=device, offsets=offsets)
    size = sum(s.bytes for s in index.shards)
    click.echo(f"{out}: {len(index.shards)} shard(s), {size} bytes, {index.images} image(s), "
               f"{8 * size / imgs.pixels.size:.4f} bits/dim")


def _decompress_shards(folder: Path, output, shard, image, force, kwargs) -> Path:
    from . import modes, shards

    index = shards.read_index(folder)
    if image is not None:
        k, position = index.locate(image)
        names = index.names(k)
        name = names[position] if names else f"image-{index.shards[k].first + position}.png"
        out = Path(output) if output else folder.parent / name
        images.refuse_overwrite(out, force)
        part = shards.decode_part(index, k, **kwargs)
        h = part.header
        images.write(part.images[position][None], h.bit_depth == 1, "single", [], out, force, h.source)
        return out
    if shard is not None:
        picked = [shard]
        default = folder.with_name(f"{folder.stem}-shard{shard}")
    else:
        picked = list(range(len(index.shards)))
        default = folder.with_suffix("")
    named = index.layout == "named"
    out = Path(output) if output else (default if named else default.with_suffix(".npy"))
    if not named:
        images.refuse_overwrite(out, force)
    parts = shards.decode_parts(index, picked, os.cpu_count() or 1, **kwargs)
    h = parts[0].header
    if named:
        clash = [n for p in parts for n in p.header.names if (out / n).exists()]
        if clash and not force:
            raise InputError(f"{out / clash[0]} exists; use --force to overwrite")
        for p in parts:
            images.write(p.images, h.bit_depth == 1, "named", p.header.names, out, True, p.header.source)
    else:
        array = np.concatenate([modes.to_array(p.images, p.header.source) for p in parts])
        images.write(array, h.bit_depth == 1, "array", [], out, force)
    return out


@main.command()
@click.argument("file", type=click.Path())
@click.option("-o", "--output", type=click.Path(), default=None,
              help="Output image (its extension picks PNG, TIFF, BMP, PPM/PGM or lossless WebP), folder or .npy "
                   "[default: from FILE, images as PNG].")
@click.option("--model", default=None, help="Model folder, for files made with an unshipped model.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--shard", type=click.IntRange(0), default=None,
              help="For a sharded folder: restore only this shard (reads no other).")
@click.option("--image", default=None,
              help="For a sharded folder: restore only this image, by name or number (reads only its shard).")
@_batch_option
@_device_option
@click.option("--threads", type=int, default=None, help="Torch CPU threads.")
def decompress(file, output, model, force, shard, image, batch_size, device, threads) -> None:
    """Decompress a .vlae file to the PNG(s) or .npy array it was made from, or a sharded
    folder (from compress --shard-size) to all, one shard, or one image of its images."""
    _set_threads(threads)
    api.check_device(device)
    if Path(file).is_dir() or Path(file).name == "index.json":
        folder = Path(file) if Path(file).is_dir() else Path(file).parent
        kwargs = dict(model=model, batch=batch_size, device=device)
        click.echo(f"{_decompress_shards(folder, output, shard, image, force, kwargs)}")
        return
    if shard is not None or image is not None:
        raise InputError("--shard and --image apply to a sharded folder (made by compress --shard-size)")
    try:
        header, _ = container.unpack(Path(file).read_bytes())
    except OSError as e:
        raise InputError(f"{file}: cannot read ({e.strerror})") from None
    total = header.count * header.height * header.width
    bar, tick = _progress(total, "decompress", sys.stderr.isatty() and total > 100_000, "px")
    out = api.decompress_file(file, output, force=force, model=model, batch=batch_size, progress=tick,
                              device=device)
    bar.close()
    click.echo(f"{out}")


@main.command()
@click.argument("file", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(file, as_json) -> None:
    """Show what a .vlae file holds, without decoding it."""
    try:
        data = Path(file).read_bytes()
    except OSError as e:
        raise InputError(f"{file}: cannot read ({e.strerror})") from None
    header, words = container.unpack(data)
    if header.layout == "mixed":
        kinds = [container.unpack(p)[0] for p in header.parts]
        d = {"file": file, "bytes": len(data), "format_version": header.version, "layout": "mixed",
             "images": header.count, "parts": "; ".join(f"{h.count} {h.width}x{h.height} {h.source.mode} ({h.mode}"
                                                       f"{', ' + h.model_id if h.model_id else ''})" for h in kinds)}
        click.echo(json.dumps(d) if as_json else "\n".join(f"{k:15s} {v}" for k, v in d.items()))
        return
    d = {"file": file, "bytes": len(data), "format_version": header.version, "mode": header.mode,
         "model": header.model_id, "model_hash": header.model_hash.hex(), "images": header.count,
         "height": header.height, "width": header.width, "channels": header.channels,
         "bit_depth": header.bit_depth, "layout": header.layout, "chunk_max": header.chunk_max,
         "payload_bytes": header.payload_bytes, "header_bytes": len(data) - header.payload_bytes,
         "bits_per_dim": 8 * len(data) / max(1, header.count * header.height * header.width * header.channels)}
    if header.mode == "lossless":
        d["pixel_offsets"] = len(header.offsets)
        d["clean_shift"] = header.clean_shift
        d["chains"] = max(1, len(header.chains))
    if header.mode == "lossy":
        d["generation"] = "each pixel's mean" if header.seed is None else f"sampled, seed {header.seed}"
    if as_json:
        click.echo(json.dumps(d))
        return
    for k, v in d.items():
        click.echo(f"{k:15s} {v:.4f}" if isinstance(v, float) else f"{k:15s} {v}")


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.option("--model", default=None, help="Model name or folder [default: chosen from the input].")
@click.option("--lossy", is_flag=True, help="Measure the lossy mode.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--no-baselines", is_flag=True, help="Skip PNG/WebP/JPEG-XL sizes.")
@click.option("--shard-size", type=click.IntRange(1), default=None,
              help="Measure sharded compression: archives of at most this many images, each with its clean start.")
@click.option("--workers", type=click.IntRange(1), default=None, help="With --shard-size: processes [default: CPU cores].")
@_batch_option
@click.option("--threads", type=int, default=None, help="Torch CPU threads.")
def measure(input_path, model, lossy, as_json, no_baselines, shard_size, workers, batch_size, threads) -> None:
    """Compress, decompress and verify; real bits/dim next to the ELBO and other codecs."""
    _set_threads(threads)
    imgs = images.read(input_path)
    if isinstance(imgs, images.Mixed):
        raise InputError(f"{input_path}: measure takes images of one kind, and this folder mixes {imgs.kinds()}; "
                         "measure each kind in its own folder")
    name = model or api.choose_model(imgs)
    dims = imgs.pixels.size
    result = {"input": str(input_path), "model": name, "mode": "lossy" if lossy else "lossless",
              "images": len(imgs.pixels), "subpixels": int(dims)}
    if shard_size is None:
        result.update(_measure_archive(imgs, name, lossy, batch_size))
    else:
        result.update(_measure_shards(imgs, name, lossy, batch_size, shard_size, workers or os.cpu_count() or 1))
    result["real_bits_per_dim"] = 8 * result["bytes"] / dims
    if result.get("neg_elbo_bits_per_dim"):
        result["real_over_neg_elbo"] = result["real_bits_per_dim"] / result["neg_elbo_bits_per_dim"]
    if not no_baselines:
        sizes = baselines.sizes(imgs.pixels, imgs.binary)
        result.update({f"{k}_bits_per_dim": (None if v is None else 8 * v / dims) for k, v in sizes.items()})
    if as_json:
        click.echo(json.dumps(result))
    else:
        for k, v in result.items():
            if isinstance(v, list):
                v = ", ".join(f"{e:.1f}" if isinstance(e, float) else str(e) for e in v)
            click.echo(f"{k:24s} {v:.4f}" if isinstance(v, float) else f"{k:24s} {v}")
    if not lossy and not result["roundtrip_ok"]:
        _fail("round trip FAILED: decoded pixels differ from the input", 1)


def _measure_archive(imgs: images.Images, name: str, lossy: bool, batch_size: int) -> dict:
    """One archive: its size, times, round trip and information content."""
    tty = sys.stderr.isatty()
    bar, tick = _pixel_progress(imgs, "compress", tty)
    t0 = time.time()
    encoded = api.encode(imgs, model=name, lossy=lossy, batch=batch_size, progress=tick)
    data = encoded.data
    t_c = time.time() - t0
    bar.close()
    bar, tick = _pixel_progress(imgs, "decompress", tty)
    t0 = time.time()
    decoded = api.decode(data, model=name, batch=batch_size, progress=tick)
    t_d = time.time() - t0
    bar.close()
    out = decoded.images[None] if imgs.layout == "single" else decoded.images
    header, words = container.unpack(data)
    result = {"bytes": len(data), "header_bytes": len(data) - header.payload_bytes,
              "compress_seconds": round(t_c, 3), "decompress_seconds": round(t_d, 3),
              "roundtrip_ok": bool(np.array_equal(out, imgs.full())) if not lossy else None,
              "neg_elbo_bits_per_dim": None}
    if encoded.info is not None:
        # The information content of what was coded, on the z actually drawn: its mean is the
        # coding model's negative ELBO (the first image, the clean start, has no bits back).
        result["neg_elbo_bits_per_dim"] = float(encoded.info.total.sum() / imgs.pixels.size)
        result["clean_start_bits"] = float(encoded.info.total[0])
    return result


def _measure_shards(imgs: images.Images, name: str, lossy: bool, batch_size: int, shard_size: int,
                    workers: int) -> dict:
    """Independent archives of at most `shard_size` images: total size, each one's clean start, times."""
    import tempfile

    from . import shards

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        index = shards.compress(imgs, Path(tmp) / "shards", shard_size, workers, model=name, lossy=lossy,
                                batch=batch_size)
        t_c = time.time() - t0
        t0 = time.time()
        out = shards.decode_shards(index, list(range(len(index.shards))), workers, model=name, batch=batch_size)
        t_d = time.time() - t0
    return {"shards": len(index.shards), "workers": workers, "bytes": sum(s.bytes for s in index.shards),
            "shard_bytes": [s.bytes for s in index.shards],
            "clean_start_bits_per_shard": [s.clean_start_bits for s in index.shards] if not lossy else None,
            "compress_seconds": round(t_c, 3), "decompress_seconds": round(t_d, 3),
            "roundtrip_ok": bool(np.array_equal(out, imgs.full())) if not lossy else None}


for _command in MODEL_COMMANDS:
    main.add_command(_command)

if __name__ == "__main__":
    main()
