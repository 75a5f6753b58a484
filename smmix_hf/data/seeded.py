"""Random augmentation that depends only on the seed, the epoch and the sample, so a resumed run repeats it.

On-the-fly augmentation normally draws from the process-wide random generators. The data loader
fetches a batch ahead of the step that trains on it, so the generator state saved in a checkpoint
is already past the next batch's draws, and a resumed run augments that batch differently from an
uninterrupted one. Drawing each sample's augmentation from its own seed removes that dependence
(and the dependence on the number of data-loader workers).

A map-style sample is named by its index; a streamed example, which has no stable index, by a digest
of its encoded image (or, for an image stored as a path, of the path).
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Callable, Iterator, Mapping, Sized
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

__all__ = ["SeededExampleTransform", "SeededSamples", "SetEpochCallback", "seeded_random"]


@contextlib.contextmanager
def seeded_random(seed: int) -> Iterator[None]:
    """Seed the torch (CPU), Python and NumPy generators for the block; restore them afterwards.

    Only the CPU generator is touched: ``torch.manual_seed`` would also queue a CUDA seeding, with a
    captured stack trace, on every sample (about 1 ms each in a DataLoader worker).
    """
    python_state, numpy_state = random.getstate(), np.random.get_state()
    torch_state = torch.default_generator.get_state()
    torch.default_generator.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        torch.default_generator.set_state(torch_state)
        random.setstate(python_state)
        np.random.set_state(numpy_state)


class _SharedEpoch:
    """An epoch number in shared memory, so persistent DataLoader workers see :meth:`set_epoch` too."""

    def __init__(self) -> None:
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(epoch)


class SeededSamples(_SharedEpoch, torch.utils.data.Dataset):
    """Wraps a map-style dataset; sample ``i`` of epoch ``e`` is transformed under the seed ``(seed, e, i)``."""

    def __init__(self, dataset: Sized, seed: int) -> None:
        super().__init__()
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        with seeded_random(hash((self.seed, self.epoch, int(index))) & 0xFFFF_FFFF):
            return self.dataset[index]


class SeededExampleTransform(_SharedEpoch):
    """A per-example transform for ``IterableDataset.map`` that runs under the seed ``(seed, epoch, image)``.

    ``image`` is a digest of the example's encoded image bytes, or of its path when the bytes are not
    stored. Two identical images get the same augmentation within an epoch, which is harmless.
    """

    def __init__(self, transform: Callable[[Mapping[str, Any]], dict[str, Any]], seed: int, image_column: str) -> None:
        super().__init__()
        self.transform = transform
        self.seed = seed
        self.image_column = image_column

    def example_seed(self, example: Mapping[str, Any]) -> int:
        image = example.get(self.image_column)
        if isinstance(image, Mapping):
            content = image.get("bytes") or str(image.get("path")).encode()
        elif isinstance(image, bytes | str):
            content = image.encode() if isinstance(image, str) else image
        elif hasattr(image, "tobytes"):  # a decoded image
            content = image.tobytes()
        else:
            content = repr(image).encode()
        digest = hashlib.blake2b(content, digest_size=8, key=f"{self.seed}/{self.epoch}".encode()).digest()
        return int.from_bytes(digest, "little") & 0xFFFF_FFFF

    def __call__(self, example: Mapping[str, Any]) -> dict[str, Any]:
        with seeded_random(self.example_seed(example)):
            return self.transform(example)


class SetEpochCallback(TrainerCallback):
    """Tells a dataset or transform with ``set_epoch`` which epoch starts (the Trainer only tells its sampler)."""

    def __init__(self, dataset: SeededSamples | SeededExampleTransform) -> None:
        self.dataset = dataset

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.dataset.set_epoch(int(state.epoch or 0))
