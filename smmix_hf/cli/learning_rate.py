"""The linear learning-rate scaling rule of DeiT: lr = base_learning_rate × global batch / base_batch_size."""

from __future__ import annotations

import logging

from smmix_hf.config import SMMixConfig
from smmix_hf.data.arguments import DataArguments
from smmix_hf.data.streaming import global_batch_size

__all__ = ["scaled_learning_rate"]

logger = logging.getLogger("smmix_hf")


def scaled_learning_rate(args: SMMixConfig, data_args: DataArguments) -> float | None:
    """``base_learning_rate × global batch / base_batch_size`` (logged), or None without a base learning rate.

    The parser refuses ``--learning_rate`` together with ``--base_learning_rate``.
    """
    if data_args.base_learning_rate is None:
        return None
    if data_args.base_learning_rate <= 0 or data_args.base_batch_size < 1:
        raise ValueError(
            f"base_learning_rate must be > 0 and base_batch_size >= 1; got {data_args.base_learning_rate} and "
            f"{data_args.base_batch_size}."
        )
    batch = global_batch_size(args)
    learning_rate = data_args.base_learning_rate * batch / data_args.base_batch_size
    logger.warning(
        "learning rate %.6g = base_learning_rate %.6g x global batch %d (%d processes x %d per device x %d "
        "accumulation steps) / base_batch_size %d.",
        learning_rate,
        data_args.base_learning_rate,
        batch,
        args.world_size,
        args.per_device_train_batch_size,
        args.gradient_accumulation_steps,
        data_args.base_batch_size,
    )
    return learning_rate
