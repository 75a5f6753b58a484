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

    The torch (CPU), Python and NumPy generators are seeded for the duration of one ``__getitem__`` and
    restored afterwards, so nothing else that draws random numbers is affected. Only the CPU generator is
    touched: ``torch.manual_seed`` would also queue a CUDA seeding, with a captured stack trace, on every
    sample (about 1 ms each in a DataLoader worker). The epoch lives in shared memory, so persistent
    DataLoader workers see :meth:`set_epoch` too.
    """

    def __init__(self, dataset: Sized, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        sample_seed = hash((self.seed, self.epoch, int(index))) & 0xFFFF_FFFF
        python_state, numpy_state = random.getstate(), np.random.get_state()
        torch_state = torch.default_generator.get_state()
        torch.default_generator.manual_seed(sample_seed)
        random.seed(sample_seed)
        np.random.seed(sample_seed)
        try:
            return self.dataset[index]
        finally:
            torch.default_generator.set_state(torch_state)
            random.setstate(python_state)
            np.random.set_state(numpy_state)


class SetEpochCallback(TrainerCallback):
    """Tells a dataset with ``set_epoch`` which epoch starts (the Trainer only tells its sampler)."""

    def __init__(self, dataset: SeededSamples) -> None:
        self.dataset = dataset

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.dataset.set_epoch(int(state.epoch or 0))
