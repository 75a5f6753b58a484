"""``--decode_on_device``: the worker transform, collator and trainer that decode the training JPEGs on the GPU.

:func:`training_parts` picks them for ``smmix-train``: :class:`~smmix_hf.data.device_draws.DeviceDecodeTransform`
in the workers, :func:`~smmix_hf.data.device_decode.collate_device_batch`, and :class:`DeviceDecodeTrainer`,
whose ``decode_batch`` (called from the Trainer's ``_prepare_inputs``, see :mod:`smmix_hf._compat`) decodes the
batch on the training device while the encoded bytes are still on the host (``decode_jpeg`` reads them from
there). Without the flag, or without CUDA (with a warning), the CPU worker path runs. A setting the device path
cannot run is refused in one sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from smmix_hf.data.arguments import DataArguments
from smmix_hf.data.device_decode import collate_device_batch, decode_on_device
from smmix_hf.data.device_draws import DeviceDecodeTransform, device_decode_problem
from smmix_hf.data.transforms import TransformSettings, collate_image_batch
from smmix_hf.data.uint8_transform import Uint8TrainTransform
from smmix_hf.trainer import SMMixTrainer

__all__ = ["DeviceDecodeTrainer", "training_parts"]

logger = logging.getLogger("smmix_hf")


class DeviceDecodeTrainer(SMMixTrainer):
    """:class:`~smmix_hf.trainer.SMMixTrainer` whose batches are decoded on the device before the step."""

    def decode_batch(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return decode_on_device(inputs, self.args.device)


def training_parts(
    settings: TransformSettings, data_args: DataArguments, *, do_train: bool
) -> tuple[Uint8TrainTransform | None, Callable[..., dict[str, torch.Tensor]], type[SMMixTrainer]]:
    """The training transform, collator and trainer class for the command line's ``--decode_on_device``.

    Raises ``ValueError`` (one sentence) where the flag cannot work.
    """
    if not data_args.decode_on_device or not do_train:
        return (Uint8TrainTransform(settings) if do_train else None), collate_image_batch, SMMixTrainer
    if data_args.streaming:
        raise ValueError(
            "--decode_on_device needs a map-style training split (an image folder, parquet or Hub data, "
            "not --streaming): drop --streaming or --decode_on_device."
        )
    if problem := device_decode_problem(settings):
        raise ValueError(problem + ".")
    if not torch.cuda.is_available():
        logger.warning("--decode_on_device: CUDA is not available; the data workers decode on the CPU.")
        return Uint8TrainTransform(settings), collate_image_batch, SMMixTrainer
    return DeviceDecodeTransform(settings), collate_device_batch, DeviceDecodeTrainer
