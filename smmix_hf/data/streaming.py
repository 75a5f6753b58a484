"""Training on a streamed split: shuffling, how the stream is divided among processes, and ``max_steps``.

The Trainer hands a ``datasets.IterableDataset`` to accelerate, which gives each process its own
shards (``IterableDataset.shard``) when the stream has at least as many shards as there are processes;
the DataLoader workers of a process then divide that process's shards among themselves. So every
example is read by exactly one process per epoch. The Trainer calls ``set_epoch`` on the stream at the
start of every epoch, which re-seeds the shuffle (shard order and buffer) with ``seed + epoch`` on all
processes alike.

A stream has no length, so the Trainer needs ``max_steps``; it is derived from the split's size.
"""

from __future__ import annotations

import contextlib
import logging
import math

import datasets

from smmix_hf.config import SMMixConfig
from smmix_hf.data.arguments import DataArguments

__all__ = ["global_batch_size", "plan_streaming", "shuffle_stream", "streaming_max_steps"]

logger = logging.getLogger("smmix_hf")


def global_batch_size(args: SMMixConfig) -> int:
    """Images per optimizer step over all processes: processes × per-device batch × accumulation steps."""
    return args.world_size * args.per_device_train_batch_size * args.gradient_accumulation_steps


def shuffle_stream(
    stream: datasets.IterableDataset, seed: int, buffer_size: int, readers: int = 1
) -> datasets.IterableDataset:
    """Split parquet shards by row group when there are fewer shards than ``readers``, then shuffle."""
    if stream.n_shards < readers:
        with contextlib.suppress(NotImplementedError):
            stream = stream.reshard()
    if buffer_size > 0:
        stream = stream.shuffle(seed=seed, buffer_size=buffer_size)
    return stream


def streaming_max_steps(
    args: SMMixConfig, data_args: DataArguments, known_size: int | None, size_source: str | None
) -> int:
    """``max_steps`` for a streamed training split: as given, or epochs × ⌈examples / global batch⌉."""
    if args.max_steps > 0:
        logger.info("streaming: max_steps = %d as given.", args.max_steps)
        return args.max_steps
    size, source = known_size, size_source
    if data_args.num_train_examples is not None:
        size, source = data_args.num_train_examples, "--num_train_examples"
        if data_args.max_train_samples is not None and data_args.max_train_samples < size:
            size, source = data_args.max_train_samples, "--max_train_samples"
    if size is None:
        raise ValueError(
            "a streamed training split needs max_steps and its size is unknown: pass --num_train_examples N (the "
            "number of training images, e.g. 1281167 for ImageNet-1k) or --max_steps N."
        )
    batch = global_batch_size(args)
    steps_per_epoch = math.ceil(size / batch)
    max_steps = math.ceil(steps_per_epoch * args.num_train_epochs)
    logger.warning(
        "streaming: %d training examples (from %s), global batch %d -> %d steps per epoch x %g epochs = max_steps %d.",
        size,
        source,
        batch,
        steps_per_epoch,
        args.num_train_epochs,
        max_steps,
    )
    return max_steps


def plan_streaming(
    args: SMMixConfig,
    data_args: DataArguments,
    stream: datasets.IterableDataset,
    known_size: int | None,
    size_source: str | None,
) -> int:
    """The ``max_steps`` of a streamed training split; logs how its shards spread over the readers.

    Every process reads its own shards unless ``dispatch_batches`` is set (an unset value means off for a
    stream: the caller sets ``accelerator_config.dispatch_batches = False``).
    """
    max_steps = streaming_max_steps(args, data_args, known_size, size_source)
    dispatch_batches = bool(getattr(args.accelerator_config, "dispatch_batches", None))
    if dispatch_batches:
        logger.info("streaming: dispatch_batches is on, so the main process reads every batch and sends it out.")
    elif stream.n_shards < args.world_size:
        logger.warning(
            "streaming: the training stream has %d shard(s) for %d processes, so every process reads the whole "
            "stream and keeps its own share of each batch; store the data in at least %d shards (ideally a "
            "multiple of processes x dataloader workers) so that each process reads only its own files.",
            stream.n_shards,
            args.world_size,
            args.world_size,
        )
    readers = args.world_size * max(1, args.dataloader_num_workers)
    if stream.n_shards < readers and not dispatch_batches:
        logger.info(
            "streaming: %d shard(s) for %d readers (processes x dataloader workers); some workers will idle.",
            stream.n_shards,
            readers,
        )
    return max_steps
