"""Checks that run before any training step, so a wrong flag costs seconds rather than a node-day."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from huggingface_hub import constants as hub_constants
from transformers import PreTrainedModel
from transformers.trainer_utils import get_last_checkpoint

from smmix_hf.backbones.base import backbone_for
from smmix_hf.config import SMMixConfig
from smmix_hf.methods import MixSettings, build_mix_method

__all__ = ["check_extras", "check_image_size", "check_output_dir", "check_push_to_hub"]

RUN_MARKERS = ("trainer_state.json", "config.json", "model.safetensors", "README.md")


def check_output_dir(args: SMMixConfig) -> None:
    """Refuse to train into a directory that already holds another run, unless resuming or overwriting."""
    output_dir = Path(args.output_dir)
    if not args.do_train or args.resume_from_checkpoint or args.overwrite_output_dir or not output_dir.is_dir():
        return
    found = sorted(
        path.name
        for path in output_dir.iterdir()
        if path.name in RUN_MARKERS or (path.is_dir() and path.name.startswith("checkpoint-"))
    )
    if found:
        latest = get_last_checkpoint(output_dir)
        resume = f"--resume_from_checkpoint {latest} to continue it, " if latest else ""
        raise ValueError(
            f"output_dir {str(output_dir)!r} already holds a run ({', '.join(found[:4])}); pass {resume}"
            "--overwrite_output_dir to replace it, or choose another --output_dir."
        )


def check_extras(streaming: bool) -> None:
    """Optional dependencies a run needs, named by the extra that installs them."""
    if streaming and importlib.util.find_spec("torchdata") is None:
        raise ValueError(
            "--streaming needs torchdata (its StatefulDataLoader keeps the stream position in every checkpoint); "
            "install it with `pip install 'smmix_hf[stream]'`."
        )


def check_push_to_hub(args: SMMixConfig) -> None:
    """An offline machine cannot push: say so before training instead of after it."""
    if args.push_to_hub and (hub_constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE") == "1"):
        raise ValueError(
            "--push_to_hub needs the Hugging Face Hub but HF_HUB_OFFLINE is set; unset HF_HUB_OFFLINE or drop "
            "--push_to_hub (the model is saved in output_dir either way)."
        )


def check_image_size(model: PreTrainedModel, image_size: int, args: SMMixConfig) -> None:
    """A method that reads the model's tokens (SMMix, TransMix) needs images that tile exactly into its grid."""
    if args.do_train and build_mix_method(MixSettings.from_config(args), args.seed).needs_probe:
        backbone_for(model).token_grid((image_size, image_size))
