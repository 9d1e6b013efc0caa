"""Started by torchrun from test_model.py: a few training steps, then each rank saves its weights."""

import sys
from pathlib import Path

from safetensors.torch import save_file

from vlae_codec.model import distributed
from vlae_codec.model.config import VLAEConfig
from vlae_codec.model.train import TrainingData, TrainOptions, fit

if __name__ == "__main__":
    data_dir, out, steps = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    cfg = VLAEConfig(latent_dim=8, encoder_channels=(8, 8, 8), encoder_hidden=16, made_hidden=(24,),
                     feature_channels=8, pixel_hidden=16)
    group = distributed.join("cpu")
    try:
        _, model = fit(group, TrainingData("bmnist", data_dir, None), out, cfg,
                       TrainOptions(epochs=2, batch_size=16, max_steps=steps),
                       resume=(out / "checkpoint" / "state.json").is_file(), progress=False)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / f"rank{group.rank}.safetensors"))
    finally:
        distributed.leave()
