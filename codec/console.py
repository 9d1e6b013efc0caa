"""Terminal helpers shared by the command lines: progress bars and torch threads."""

from __future__ import annotations

from tqdm import tqdm


def progress(total: int, desc: str, enabled: bool, unit: str = "img"):
    """A tqdm bar and a callback that advances it by k."""
    bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "px", disable=not enabled, leave=False)
    return bar, (lambda k: bar.update(k))


def set_threads(threads: int | None) -> None:
    """Torch CPU threads, if given."""
    if threads:
        import torch

        torch.set_num_threads(threads)
