"""The evaluation transform handing over uint8: the saved image processor's resize and centre crop, with its
rescale and normalisation left to :func:`~smmix_hf.data.device_batch.finish_pixels` on the device.

The pixels are those of :func:`~smmix_hf.data.transforms.evaluation_image_processor` (the processor saved with the
model, which ``pipeline()`` runs) before it scales and normalises them; ``finish_pixels`` then gives the processor's
float pixels to fp32 rounding, so the evaluation accuracy is ``pipeline()``'s.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from smmix_hf.data.transforms import TransformSettings, evaluation_image_processor

__all__ = ["Uint8EvalTransform"]


class Uint8EvalTransform:
    """PIL image → ``{"pixel_values": uint8 [3, S, S], ...}``: the evaluation processor without rescale and
    normalise, and no erasing, in the row layout of :class:`~smmix_hf.data.uint8_transform.Uint8TrainTransform`."""

    def __init__(self, settings: TransformSettings) -> None:
        self.settings = settings
        self.image_processor = evaluation_image_processor(settings)

    def __call__(self, image: Image.Image) -> dict[str, Any]:
        processed = self.image_processor(image, return_tensors="pt", do_rescale=False, do_normalize=False)
        pixels = processed["pixel_values"][0]
        if pixels.dtype != torch.uint8:  # a processor that returns floats of whole values
            pixels = pixels.round().clamp(0, 255).to(torch.uint8)
        return {
            "pixel_values": pixels,
            "erase_boxes": torch.zeros((1, 4), dtype=torch.int32),
            "erase_seed": 0,
            "erase_mode": 0,
            "pixel_mean": self.settings.mean,
            "pixel_std": self.settings.std,
        }
