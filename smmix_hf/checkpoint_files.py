"""Reading a checkpoint without running code from it.

Every file smmix_hf writes into a checkpoint holds plain tensors, numbers, strings, lists and dicts, and is read
with ``torch.load(..., weights_only=True)``, as transformers reads its own (``rng_state.pth``, ``optimizer.pt``):
a pickle that would call a function is refused instead of run. :func:`check_checkpoint_files` reads every file a
resume will read before anything is loaded, so that a damaged or tampered checkpoint stops the run in one line
naming the file. A draw state pickled by hand, or by an earlier version, loads only with the explicit opt-in
``--trust_checkpoint`` (``SMMixConfig.trust_checkpoint``), and only for smmix_hf's own files.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

__all__ = ["OWN_FILE_PATTERNS", "CheckpointFileRefused", "check_checkpoint_files", "load_plain"]

# The files smmix_hf writes into a checkpoint (the draw generators, the stream position of each process).
OWN_FILE_PATTERNS = ("smmix_sampler_state.pth", "stream_state_rank*.pth")
# Written by transformers but never read back when resuming (the pickled TrainingArguments).
NOT_READ_ON_RESUME = ("training_args.bin",)
_BLOCKED = re.compile(r"GLOBAL (\S+) (?:was|whose)")


class CheckpointFileRefused(ValueError):
    """A checkpoint file that was not loaded; the message (one line) names it and says why."""


def _is_own(path: Path) -> bool:
    return any(path.match(pattern) for pattern in OWN_FILE_PATTERNS)


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split())
    blocked = _BLOCKED.search(text)
    return f"a pickled {blocked.group(1)}" if blocked else "a pickled Python object"


def load_plain(path: str | Path, *, trusted: bool = False, mmap: bool = False) -> Any:
    """``path`` loaded with ``weights_only=True`` (plain tensors and containers only). A file that holds other
    pickled objects is refused (:class:`CheckpointFileRefused`) unless ``trusted``; so is one that is not a
    readable torch file."""
    path = Path(path)
    try:
        with _numpy_globals():
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        if trusted and _is_own(path):
            return torch.load(path, map_location="cpu", weights_only=False)
        opt_in = (
            " If you trust where the checkpoint came from (e.g. one written by an earlier smmix_hf, which pickled "
            "its draw state), resume with --trust_checkpoint true."
            if _is_own(path)
            else " transformers refuses it too; the file is not one a Trainer wrote."
        )
        raise CheckpointFileRefused(
            f"{path} was refused: it holds {_reason(error)}, which loading weights-only does not run, so the "
            f"checkpoint may have been tampered with.{opt_in}"
        ) from error
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointFileRefused(_damaged(path, error)) from error


def _damaged(path: Path, error: BaseException) -> str:
    reason = " ".join(str(error).split()).split(". ")[0]
    return (
        f"{path} was refused: it is damaged or incomplete ({reason}); resume from another checkpoint, or copy this "
        "one again."
    )


def _numpy_globals() -> Any:
    """transformers' allowlist for the NumPy RNG state in ``rng_state.pth`` (its ``trainer_pt_utils.safe_globals``),
    so that each file is read as the Trainer reads it."""
    from transformers.trainer_pt_utils import safe_globals

    return safe_globals()


def _check_safetensors(path: Path) -> None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as file:
            for key in file.keys():  # noqa: SIM118 (a safe_open handle is not a dict)
                file.get_slice(key)
    except Exception as error:  # safetensors raises its own SafetensorError (not exported) for a damaged file
        raise CheckpointFileRefused(_damaged(path, error)) from error


def check_checkpoint_files(checkpoint: str | Path, *, trusted: bool = False) -> None:
    """Read every weight, optimizer, scheduler, RNG and smmix_hf file of ``checkpoint`` as a resume will read it
    (tensors memory-mapped, not copied): a file that fails raises :class:`CheckpointFileRefused` naming it."""
    for path in sorted(Path(checkpoint).iterdir()):
        if not path.is_file() or path.name in NOT_READ_ON_RESUME:
            continue
        if path.suffix == ".safetensors":
            _check_safetensors(path)
        elif path.suffix in (".pth", ".pt", ".bin"):
            load_plain(path, trusted=trusted, mmap=True)
