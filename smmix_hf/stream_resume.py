"""Resuming a streamed training split where it stopped, from the data loader's state in the checkpoint.

A streamed split (a ``datasets.IterableDataset``) has no indices, so the Trainer's own resume reads and
discards every batch already trained on, from the start of the stream; and since a stream has no length,
it also loses the epoch count and restarts in epoch 0. Instead, every process saves the state of its
data loader with each checkpoint: a torchdata ``StatefulDataLoader`` (accelerate builds one with
``use_stateful_dataloader``), whose state holds each DataLoader worker's ``IterableDataset.state_dict()``,
the shard and the position in it. A resumed run loads that state and reads on from there.

What the ``datasets`` state cannot hold: the examples waiting in a shuffle buffer at the checkpoint (up to
``--shuffle_buffer_size`` per reader) are not read again in the resumed epoch. Without a shuffle buffer a
resumed run reads exactly the examples an uninterrupted run would. The position is per process and per
DataLoader worker, so a run resumes with the numbers it was saved with.
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import asdict, dataclass
from typing import Any

import torch

from smmix_hf.checkpoint_files import load_plain

__all__ = [
    "STREAM_STATE_NAME",
    "StreamPosition",
    "enable_stateful_loading",
    "load_stream_position",
    "loader_state_for_resume",
    "restart_epoch_afresh",
    "save_stream_position",
]

logger = logging.getLogger("smmix_hf")

STREAM_STATE_NAME = "stream_state_rank{rank}.pth"


@dataclass
class StreamPosition:
    """Where one process stood in the stream when a checkpoint was written."""

    epoch: int
    epoch_finished: bool  # the epoch's last batch was trained before the checkpoint
    loader_state: dict[str, Any]
    num_processes: int
    num_workers: int

    def check_layout(self, num_processes: int, num_workers: int, checkpoint: str) -> None:
        """The saved position is per process and per DataLoader worker: both counts must match."""
        if (num_processes, num_workers) != (self.num_processes, self.num_workers):
            raise ValueError(
                f"{checkpoint} holds the stream position of {self.num_processes} process(es) x {self.num_workers} "
                f"DataLoader worker(s), and this run has {num_processes} x {num_workers}; resume with "
                f"{self.num_processes} process(es) and --dataloader_num_workers {self.num_workers}, or pass "
                "--ignore_data_skip true to restart the stream from its beginning."
            )


def enable_stateful_loading(accelerator: Any) -> None:
    """Have accelerate build torchdata ``StatefulDataLoader``s, whose state a checkpoint can hold."""
    try:
        import torchdata.stateful_dataloader  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "resuming a streamed training split needs torchdata's StatefulDataLoader: pip install 'smmix_hf[stream]'."
        ) from error
    accelerator.dataloader_config.use_stateful_dataloader = True


def _state_file(directory: str, rank: int) -> str:
    return os.path.join(directory, STREAM_STATE_NAME.format(rank=rank))


def save_stream_position(loader: Any, epoch: int, directory: str, rank: int, num_processes: int) -> None:
    """Write this process's stream position (``loader`` is the prepared training data loader)."""
    state = loader.state_dict()
    position = StreamPosition(
        epoch=epoch,
        epoch_finished=bool(state.get("_iterator_finished", False)),
        loader_state=state,
        num_processes=num_processes,
        num_workers=loader.num_workers,
    )
    torch.save(asdict(position), _state_file(directory, rank))


def load_stream_position(checkpoint: str, rank: int, *, trusted: bool = False) -> StreamPosition | None:
    """This process's stream position in ``checkpoint``, or None if the checkpoint holds none. It holds plain values
    and is read weights-only (:func:`~smmix_hf.checkpoint_files.load_plain`; ``trusted`` unpickles an older file)."""
    path = _state_file(checkpoint, rank)
    if not os.path.isfile(path):
        return None
    return StreamPosition(**load_plain(path, trusted=trusted))


def _pad_lists(state: Any, length: int) -> Any:
    """Every list in ``state`` extended to ``length`` entries with copies of its last entry."""
    if isinstance(state, dict):
        return {key: _pad_lists(value, length) for key, value in state.items()}
    if isinstance(state, list):
        padded = [_pad_lists(value, length) for value in state]
        if padded:
            padded += [copy.deepcopy(padded[-1]) for _ in range(length - len(padded))]
        return padded
    return state


def loader_state_for_resume(position: StreamPosition, num_sources: int) -> dict[str, Any]:
    """The saved loader state, mended for two faults of ``datasets`` (5.2) in DataLoader workers.

    - A worker's saved ``epoch`` is sometimes 0 although it read the epoch it was told; ``datasets`` only
      restores a position whose epoch matches, so the epoch is set from the Trainer's own count.
    - A worker first loads its position into the whole stream and only then into its own share of the
      shards; for a shuffled stream the whole stream's per-shard lists are longer than the worker's, and
      the first load fails with an IndexError. That first load is discarded, so the worker's lists are
      padded to the whole stream's shard count; the second load reads only the worker's own entries.
    """
    state = copy.deepcopy(position.loader_state)
    snapshots = state.get("_snapshot", {}).get("_worker_snapshots", {})
    for snapshot in snapshots.values():
        dataset_state = snapshot.get("dataset_state")
        if isinstance(dataset_state, dict) and "epoch" in dataset_state:
            dataset_state["epoch"] = position.epoch
            snapshot["dataset_state"] = _pad_lists(dataset_state, num_sources)
    dataset_state = state.get("dataset_state")
    if isinstance(dataset_state, dict) and "epoch" in dataset_state:
        dataset_state["epoch"] = position.epoch
    return state


def restart_epoch_afresh(loader: Any) -> None:
    """Make the first epoch of a resumed run read with the epoch the Trainer sets, not with epoch 0.

    accelerate asks a new ``StatefulDataLoader`` for its state when it wraps it, and torchdata creates the
    loader's iterator to answer. That starts the DataLoader workers, which begin reading the stream with
    the epoch they were started with (0). Loading that untouched state back drops the early iterator, so
    the workers start only when the epoch has been set.
    """
    loader.load_state_dict(loader.state_dict())
