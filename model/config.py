"""Hyper-parameters of a VLAE, stored as the JSON config beside shipped weights."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class VLAEConfig:
    """Architecture of one VLAE; everything needed to rebuild it from weights."""

    height: int = 28
    width: int = 28
    channels: int = 1
    likelihood: str = "bernoulli"  # or "logistic_mixture" for 8-bit pixels
    # 0: one global code z per image of exactly height x width. B > 0: a grid of codes, one
    # per B x B block, for images of any size (height and width are then the training size).
    block: int = 0
    mixtures: int = 5  # logistic components per subpixel (logistic_mixture only)
    latent_dim: int = 32
    # Encoder q(z|x): conv widths at full, half and quarter (and, with blocks, eighth) resolution.
    encoder_channels: tuple[int, int, int] = (32, 32, 64)
    encoder_hidden: int = 256
    # Prior p(z): one autoregressive-flow layer built on MADE.
    made_hidden: tuple[int, ...] = (256, 256)
    # Decoder p(x|z): features of z on the pixel grid, then a local PixelCNN head.
    feature_channels: int = 64
    window_rows: int = 4  # rows above the current pixel that it sees
    window_half_width: int = 4  # columns left and right of it in those rows
    pixel_hidden: int = 64
    pixel_layers: int = 2  # 1x1 layers after the window layer
    extra: dict = field(default_factory=dict)

    @property
    def dims(self) -> int:
        """Subpixels per image, the denominator of bits/dim."""
        return self.height * self.width * self.channels

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "VLAEConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kw)

    @classmethod
    def load(cls, path: str | Path) -> "VLAEConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


# The architecture each data set trains with unless told otherwise.
PRESETS = {
    "bmnist": VLAEConfig(),
    "mnist": VLAEConfig(likelihood="logistic_mixture", mixtures=5),
    "cifar": VLAEConfig(height=32, width=32, channels=3, likelihood="logistic_mixture", mixtures=5,
                        block=8, latent_dim=16, encoder_channels=(64, 64, 96), made_hidden=(128, 128),
                        feature_channels=96, pixel_hidden=128, pixel_layers=2),
}
# Photo models share cifar's architecture (so a run can start from the trained cifar model) and
# train on crops (TrainOptions.crop sets height and width); "photo-grey" codes one channel.
# The shipped cifar model's pixel head was grown to 256 units (model/grow.py).
PRESETS["photo"] = dataclasses.replace(PRESETS["cifar"], pixel_hidden=256)
PRESETS["photo-grey"] = dataclasses.replace(PRESETS["photo"], channels=1)
