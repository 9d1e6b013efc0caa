"""The suite's figures as PNG files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

VLAE_COLOR, BBANS_COLOR, OTHER_COLOR = "tab:red", "tab:blue", "tab:gray"


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rates(columns: list[tuple[str, dict[str, float]]], path: Path) -> None:
    """One panel per data set: each codec's bits/dim as a bar, best at the top, vlae-codec in red."""
    fig, axes = plt.subplots(1, len(columns), figsize=(5.2 * len(columns), 5.5), squeeze=False)
    for ax, (title, values) in zip(axes[0], columns):
        items = sorted(values.items(), key=lambda kv: kv[1], reverse=True)
        names = [k for k, _ in items]
        colors = [VLAE_COLOR if k.startswith("vlae-codec") else BBANS_COLOR if k.startswith("BB-ANS")
                  else OTHER_COLOR for k in names]
        ax.barh(range(len(items)), [v for _, v in items], color=colors)
        ax.set_yticks(range(len(items)), names, fontsize=8)
        for i, (_, v) in enumerate(items):
            ax.text(v, i, f" {v:.3f}", va="center", fontsize=7)
        ax.set_xlabel("bits/dim (lower is better)")
        ax.set_title(title, fontsize=10)
        ax.set_xlim(0, 1.18 * max(v for _, v in items))
    _save(fig, path)


def archive_size(panels: list[tuple[str, dict[str, list[tuple[int, float]]], dict[str, float]]], path: Path) -> None:
    """Bits/dim against the number of images in one archive (log scale), one panel per data set,
    with each codec's -ELBO as a dashed line: the rate a long archive approaches."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (title, lines, asymptotes) in zip(axes[0], panels):
        for label, points in lines.items():
            color = VLAE_COLOR if label.startswith("vlae-codec") else BBANS_COLOR
            ax.plot([n for n, _ in points], [v for _, v in points], "o-", color=color, label=label)
        for label, value in asymptotes.items():
            color = VLAE_COLOR if label.startswith("vlae-codec") else BBANS_COLOR
            ax.axhline(value, color=color, linestyle="--", linewidth=1, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("images in one archive")
        ax.set_ylabel("bits/dim, whole file")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)


def _color(label: str) -> str:
    return VLAE_COLOR if label.startswith("vlae-codec") else BBANS_COLOR if label.startswith("BB-ANS") else OTHER_COLOR


def decode_time(panels: list[tuple[str, str, dict[str, list[tuple[float, float]]]]], path: Path) -> None:
    """Decompression seconds against images per archive or pixels per image (log-log); a codec
    keeps its colour, a model its line style."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    styles: dict[str, str] = {}
    for ax, (title, xlabel, lines) in zip(axes[0], panels):
        for label, points in lines.items():
            model = label.split(", ")[-1]
            style = styles.setdefault(model, ("o-", "s--", "^:", "d-.")[len(styles) % 4])
            ax.plot([p for p, _ in points], [s for _, s in points], style, color=_color(label), label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("decompression seconds")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    _save(fig, path)


def lossy_tradeoff(panels: list[tuple[str, dict[str, list[tuple[float, float]]]]], path: Path) -> None:
    """Class agreement against bytes per digit (log scale), one panel per model. Labels start with
    the codec's name, which picks the colour; a "smallest" point is a star, a curve has dots."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    colors = {"vlae-codec": VLAE_COLOR, "JPEG": "tab:blue", "WebP": "tab:green", "AVIF": "tab:purple"}
    for ax, (title, lines) in zip(axes[0], panels):
        efforts = 0
        for label, points in lines.items():
            codec = label.split(",")[0]
            if codec == "vlae-codec":
                style, efforts = ("o", "s", "^", "D", "v")[efforts % 5], efforts + 1
            else:
                style = "*" if "smallest" in label else ".-"
            ax.plot([b for b, _ in points], [100 * a for _, a in points], style, color=colors.get(codec, OTHER_COLOR),
                    label=label, markersize=12 if style == "*" else 6, fillstyle="none" if codec == "vlae-codec" else "full")
        ax.set_xscale("log")
        ax.set_xlabel("bytes per digit (vlae-codec: one archive; others: single files)")
        ax.set_ylabel("class agreement, %")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    _save(fig, path)


def image_grid(rows: list[tuple[str, np.ndarray]], path: Path) -> None:
    """Rows of images (k, H, W) uint8 0..255, each row labelled on the left."""
    strips = [np.concatenate(list(images), axis=1) for _, images in rows]
    h, w = strips[0].shape
    row_inches, label_inches = 0.8, 1.6
    width = w / h * row_inches + label_inches
    fig, axes = plt.subplots(len(rows), 1, figsize=(width, len(rows) * (row_inches + 0.1)), squeeze=False)
    for ax, (label, _), strip in zip(axes[:, 0], rows, strips):
        ax.imshow(strip, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.subplots_adjust(left=label_inches / width, right=0.99, top=0.98, bottom=0.02, hspace=0.15)
    fig.savefig(path, dpi=110)
    plt.close(fig)
