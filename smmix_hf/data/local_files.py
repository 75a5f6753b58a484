"""Local training data: image folders and shard files (WebDataset ``.tar``, ``.parquet``).

Shard files are read by the ``datasets`` packaged builders (``webdataset``, ``parquet``). An image folder
streams through :func:`stream_image_folder`, which lists the files once and deals them into shards, so
that processes and DataLoader workers each read their own files (``datasets``' own ``imagefolder``
builder streams a folder as a single shard).
"""

from __future__ import annotations

import glob
import os
import random
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import datasets

__all__ = [
    "IMAGE_FILE_EXTENSIONS",
    "SHARD_FORMATS",
    "check_class_folders",
    "expand_data_files",
    "list_image_folder",
    "shard_format",
    "stream_image_folder",
]

SHARD_FORMATS = {".tar": "webdataset", ".parquet": "parquet", ".arrow": "arrow"}
IMAGE_FILE_EXTENSIONS = frozenset(
    (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".jfif")
)
_REMOTE_PREFIXES = ("hf://", "s3://", "gs://", "gcs://", "http://", "https://", "az://", "abfs://")
FOLDER_SHUFFLE_SEED = 0
MAX_FOLDER_SHARDS = 1024


def expand_data_files(spec: str, flag: str) -> list[str]:
    """The files named by a comma-separated list of paths and globs; remote URLs pass through unexpanded."""
    files: list[str] = []
    for pattern in (part.strip() for part in spec.split(",")):
        if not pattern:
            continue
        if pattern.startswith(_REMOTE_PREFIXES):
            files.append(pattern)
            continue
        matches = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
        if not matches:
            raise FileNotFoundError(f"{flag} {pattern!r} matches no file; check the path or quote the glob.")
        files.extend(match for match in matches if os.path.isfile(match))
    if not files:
        raise FileNotFoundError(f"{flag} {spec!r} names no file; pass paths or globs such as 'shards/train-*.tar'.")
    return files


def shard_format(files: list[str], flag: str) -> str:
    """The ``datasets`` builder that reads ``files``, from their extension; all files must share it."""
    extensions = {Path(file.split("::")[0]).suffix.lower() for file in files}
    formats = {SHARD_FORMATS.get(extension) for extension in extensions}
    if None in formats or len(formats) != 1:
        known = ", ".join(SHARD_FORMATS)
        raise ValueError(
            f"{flag} mixes or does not name shard files ({', '.join(sorted(extensions))}); use one of {known} "
            "(WebDataset, parquet, Arrow), or --train_dir for an image folder."
        )
    return formats.pop()  # type: ignore[return-value]


def _class_folders(root: Path) -> list[str]:
    return sorted(entry.name for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith("."))


def _images_under(folder: Path, extensions: Collection[str] = IMAGE_FILE_EXTENSIONS) -> list[str]:
    return [
        os.path.join(dirpath, filename)
        for dirpath, _, filenames in sorted(os.walk(folder))
        for filename in sorted(filenames)
        if os.path.splitext(filename)[1].lower() in extensions
    ]


def check_class_folders(directory: str, flag: str, extensions: Collection[str] = IMAGE_FILE_EXTENSIONS) -> None:
    """Refuse class sub-folders that hold no image file: such a class would still count (or silently not count,
    depending on the reader) and shift ``num_labels`` and the label ids of every class after it."""
    root = Path(directory)
    if not root.is_dir():
        return
    classes = _class_folders(root)
    empty = [name for name in classes if not _images_under(root / name, extensions)]
    if empty and len(empty) < len(classes):
        shown = ", ".join(map(repr, empty[:5])) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        raise ValueError(
            f"{flag} {directory!r}: class folder(s) {shown} hold no image files; put the class's images in them or "
            "remove them (an empty class would change the number of classes and the label ids)."
        )


def list_image_folder(directory: str, flag: str) -> tuple[list[tuple[str, int]], list[str]]:
    """``(path, label)`` for every image under ``directory/<class>/``, and the sorted class names."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"{flag} {directory!r} is not a directory of class sub-folders.")
    classes = _class_folders(root)
    if not classes:
        raise ValueError(f"{flag} {directory!r} has no class sub-folders; put each class's images in <dir>/<class>/.")
    files = [(path, label) for label, name in enumerate(classes) for path in _images_under(root / name)]
    if not files:
        raise ValueError(f"{flag} {directory!r} holds no image files ({', '.join(sorted(IMAGE_FILE_EXTENSIONS))}).")
    check_class_folders(directory, flag)
    return files, classes


def _folder_rows(shards: list[list[tuple[str, int]]]) -> Iterator[dict[str, Any]]:
    for shard in shards:
        for path, label in shard:
            yield {"image": {"bytes": None, "path": path}, "label": label}


def stream_image_folder(directory: str, flag: str = "--train_dir") -> tuple[datasets.IterableDataset, int]:
    """An image folder as an ``IterableDataset`` of up to 1024 shards, and its number of images.

    The file list is shuffled once with a fixed seed before it is dealt into shards, so every shard holds
    every class and every process deals the same shards.
    """
    files, classes = list_image_folder(directory, flag)
    random.Random(FOLDER_SHUFFLE_SEED).shuffle(files)
    num_shards = min(len(files), MAX_FOLDER_SHARDS)
    shards = [files[index::num_shards] for index in range(num_shards)]
    features = datasets.Features({"image": datasets.Image(decode=False), "label": datasets.ClassLabel(names=classes)})
    stream = datasets.IterableDataset.from_generator(_folder_rows, features=features, gen_kwargs={"shards": shards})
    return stream, len(files)
