"""Random augmentation that depends only on (seed, epoch, sample index), so a resumed run repeats it.

On-the-fly augmentation normally draws from the process-wide random generators. The data loader
fetches a batch ahead of the step that trains on it, so the generator state saved in a checkpoint
is already past the next batch's draws, and a resumed run augments that batch differently from an
uninterrupted one. Drawing each sample's augmentation from its own seed removes that dependence
(and the dependence on the number of data-loader workers).
"""

from __future__ import annotations

import random
from collections.abc import Sized
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

__all__ = ["SeededSamples", "SetEpochCallback"]


class SeededSamples(torch.utils.data.Dataset):
    """Wraps a map-style dataset; sample ``i`` of epoch ``e`` is transformed under the seed ``(seed, e, i)``.

    The torch, Python and NumPy generators are seeded for the duration of one ``__getitem__`` and
    restored afterwards, so nothing else that draws random numbers is affected.
    """

    def __init__(self, dataset: Sized, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        sample_seed = hash((self.seed, self.epoch, int(index))) & 0xFFFF_FFFF
        python_state, numpy_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed)
            random.seed(sample_seed)
            np.random.seed(sample_seed)
            try:
                return self.dataset[index]
            finally:
                random.setstate(python_state)
                np.random.set_state(numpy_state)


class SetEpochCallback(TrainerCallback):
    """Tells a dataset with ``set_epoch`` which epoch starts (the Trainer only tells its sampler)."""

    def __init__(self, dataset: SeededSamples) -> None:
        self.dataset = dataset

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.dataset.set_epoch(int(state.epoch or 0))
