"""Model zoo: shipped models by name, and saving/loading weights as safetensors + JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors.torch import load_file, save_file

from .config import VLAEConfig
from .errors import ModelError
from .vlae import VLAE

ZOO_DIR = Path(__file__).resolve().parent / "zoo"
WEIGHTS, CONFIG, LOG, CARD = "weights.safetensors", "config.json", "train_log.json", "card.json"


class ModelNotFound(ModelError):
    """No shipped model of that name and no model folder at that path."""


def shipped_models() -> list[str]:
    """Names of the models inside the package."""
    return sorted(p.name for p in ZOO_DIR.iterdir() if (p / WEIGHTS).is_file())


def resolve(name_or_dir: str | os.PathLike) -> Path:
    """Folder holding a model: a shipped name, or a path to a folder with weights and config."""
    as_path = Path(name_or_dir)
    if (as_path / WEIGHTS).is_file() and (as_path / CONFIG).is_file():
        return as_path
    shipped = ZOO_DIR / str(name_or_dir)
    if str(name_or_dir) in shipped_models():
        return shipped
    raise ModelNotFound(
        f"no model {str(name_or_dir)!r}: give a shipped name ({', '.join(shipped_models()) or 'none'}) "
        f"or a folder with {WEIGHTS} and {CONFIG}"
    )


def save(model: VLAE, directory: str | os.PathLike) -> None:
    """Write weights (safetensors) and config (JSON) into a folder, atomically per file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = directory / (WEIGHTS + ".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, directory / WEIGHTS)
    write_text_atomic(directory / CONFIG, model.cfg.to_json() + "\n")


def load(name_or_dir: str | os.PathLike) -> VLAE:
    """A model in eval mode from a shipped name or a folder; never unpickles anything."""
    directory = resolve(name_or_dir)
    model = VLAE(VLAEConfig.load(directory / CONFIG))
    model.load_state_dict(load_file(str(directory / WEIGHTS)))
    return model.eval()


def card(name_or_dir: str | os.PathLike) -> dict:
    """The model's measured test figures (card.json), or {} if it has none."""
    path = resolve(name_or_dir) / CARD
    return json.loads(path.read_text()) if path.is_file() else {}


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
