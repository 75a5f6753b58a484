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
    """Wraps a map-style dataset; sample ``i`` of epoch ``e`` is transformed under the seed ``(seed, e, i)``.

    Without ``transform`` the dataset transforms its rows itself (``set_transform``) while the process-wide
    generators are seeded with the sample's seed and restored afterwards (:func:`seeded_random`). With
    ``transform`` (``row, seed -> row``) the dataset gives its stored rows and ``transform`` draws from
    generators of its own, which leaves the process-wide ones alone and costs no saving and restoring.
    """

    def __init__(
        self,
        dataset: Sized,
        seed: int,
        transform: Callable[[Mapping[str, Any], int], dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.dataset = dataset
        self.seed = seed
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def sample_seed(self, index: int) -> int:
        return hash((self.seed, self.epoch, int(index))) & 0xFFFF_FFFF

    def __getitem__(self, index: int) -> Any:
        if self.transform is not None:
            return self.transform(self.dataset[index], self.sample_seed(index))
        with seeded_random(self.sample_seed(index)):
            return self.dataset[index]


class SeededExampleTransform(_SharedEpoch):
    """A per-example transform for ``IterableDataset.map`` that runs under the seed ``(seed, epoch, image)``.

    ``image`` is a digest of the example's encoded image bytes, or of its path when the bytes are not
    stored. Two identical images get the same augmentation within an epoch, which is harmless. With
    ``takes_seed`` the transform is called as ``transform(example, seed)`` and seeds its own generators.
    """

    def __init__(
        self, transform: Callable[..., dict[str, Any]], seed: int, image_column: str, takes_seed: bool = False
    ) -> None:
        super().__init__()
        self.transform = transform
        self.seed = seed
        self.image_column = image_column
        self.takes_seed = takes_seed  # transform(example, seed), drawing from generators of its own

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
        if self.takes_seed:
            return self.transform(example, self.example_seed(example))
        with seeded_random(self.example_seed(example)):
            return self.transform(example)


class SetEpochCallback(TrainerCallback):
    """Tells a dataset or transform with ``set_epoch`` which epoch starts (the Trainer only tells its sampler)."""

    def __init__(self, dataset: SeededSamples | SeededExampleTransform) -> None:
        self.dataset = dataset

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.dataset.set_epoch(int(state.epoch or 0))
