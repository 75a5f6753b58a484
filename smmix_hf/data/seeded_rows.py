"""A stored row and its sample seed in, a model row out: for transforms that decode and draw for themselves.

:class:`~smmix_hf.data.uint8_transform.Uint8TrainTransform` takes the stored image (so that it can decode only
its crop) and the sample's seed (so that it draws from generators of its own).
:func:`make_seeded_row_transform` wraps it the way :func:`~smmix_hf.data.transforms.make_batch_transform`
wraps a PIL transform: an image that does not decode is counted and skipped (``pixel_values`` None), or stops
the run with ``strict``; labels are checked and mapped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from smmix_hf.data.images import DECODE_ERRORS, SkipCounter, report_undecodable
from smmix_hf.data.transforms import _check_columns, _model_labels

__all__ = ["RowTransform", "SeededImageTransform", "make_seeded_row_transform"]

SeededImageTransform = Callable[[Any, int], dict[str, Any]]
RowTransform = Callable[[Mapping[str, Any], int], dict[str, Any]]


def make_seeded_row_transform(
    transform: SeededImageTransform,
    image_column: str = "image",
    label_column: str = "label",
    *,
    strict: bool = False,
    counter: SkipCounter | None = None,
    label_map: Sequence[int] | None = None,
    num_labels: int | None = None,
) -> RowTransform:
    """``row, seed -> {"pixel_values": ..., "labels": int, ...}`` around ``transform(stored_image, seed)``."""

    def apply(row: Mapping[str, Any], seed: int) -> dict[str, Any]:
        _check_columns(list(row), image_column, label_column, "make_seeded_row_transform")
        value, shard = row[image_column], row.get("__url__")
        (label,) = _model_labels([row[label_column]], [value], [shard], num_labels, label_map)
        try:
            result = transform(value, seed)
        except DECODE_ERRORS as error:
            report_undecodable(value, error, strict=strict, counter=counter, shard=shard)
            return {"pixel_values": None, "labels": label}
        return {**result, "labels": label}

    return apply
