"""The linear learning-rate scaling rule of DeiT: lr = base_learning_rate × global batch / base_batch_size."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from smmix_hf.cli.arguments import DataArguments
from smmix_hf.cli.parser import read_recipe
from smmix_hf.config import SMMixConfig
from smmix_hf.data.streaming import global_batch_size

__all__ = ["learning_rate_given", "scale_learning_rate"]

logger = logging.getLogger("smmix_hf")
_UNSET = object()


def learning_rate_given(argv: Sequence[str] | None) -> bool:
    """Whether ``--learning_rate`` is set on the command line or in the ``--config`` recipe."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--config", default=None)
    parser.add_argument("--learning_rate", "--learning-rate", default=_UNSET)
    known, _ = parser.parse_known_args(argv)
    return known.learning_rate is not _UNSET or (
        known.config is not None and "learning_rate" in read_recipe(known.config)
    )


def scale_learning_rate(args: SMMixConfig, data_args: DataArguments, argv: Sequence[str] | None) -> None:
    """Set ``args.learning_rate`` from ``base_learning_rate`` and the global batch, and log it."""
    if data_args.base_learning_rate is None:
        return
    if learning_rate_given(argv):
        raise ValueError(
            "--learning_rate and --base_learning_rate are both set; pass one (base_learning_rate gives "
            "lr = base_learning_rate x global batch / base_batch_size)."
        )
    if data_args.base_learning_rate <= 0 or data_args.base_batch_size < 1:
        raise ValueError(
            f"base_learning_rate must be > 0 and base_batch_size >= 1; got {data_args.base_learning_rate} and "
            f"{data_args.base_batch_size}."
        )
    batch = global_batch_size(args)
    args.learning_rate = data_args.base_learning_rate * batch / data_args.base_batch_size
    logger.warning(
        "learning rate %.6g = base_learning_rate %.6g x global batch %d (%d processes x %d per device x %d "
        "accumulation steps) / base_batch_size %d.",
        args.learning_rate,
        data_args.base_learning_rate,
        batch,
        args.world_size,
        args.per_device_train_batch_size,
        args.gradient_accumulation_steps,
        data_args.base_batch_size,
    )
