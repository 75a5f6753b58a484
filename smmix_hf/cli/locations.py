"""Checks on the places a run reads and writes: the model (a local directory or a Hub id), the checkpoint to
resume from and the output directory. Each raises a one-line ``ValueError`` / ``FileNotFoundError`` that says
how to fix it, before any data or weights are loaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from huggingface_hub import constants as hub_constants
from huggingface_hub import try_to_load_from_cache
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers.trainer_utils import get_last_checkpoint

from smmix_hf.backbones.names import MODEL_ALIASES, resolve_model_name
from smmix_hf.checkpoint_files import check_checkpoint_files
from smmix_hf.cli.arguments import ModelArguments
from smmix_hf.config import SMMixConfig

__all__ = [
    "check_model_source",
    "check_model_sources",
    "check_output_path",
    "check_resume_checkpoint",
    "check_vision_transformer",
    "hub_offline",
    "loading_model",
]

CHECKPOINT_STATE = "trainer_state.json"
TRUE_VALUES = ("1", "ON", "YES", "TRUE")


def hub_offline() -> bool:
    """Whether the Hugging Face Hub is off limits (``HF_HUB_OFFLINE`` set now or at import)."""
    return bool(hub_constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in TRUE_VALUES


def _looks_like_path(name: str) -> bool:
    """A name that cannot be a Hub id (``/abs/dir``, ``./dir``, ``a/b/c``, ``~/dir``) is meant as a local path."""
    try:
        validate_repo_id(name)
    except HFValidationError:
        return True
    return False


def check_model_source(
    name: str, flag: str, *, from_scratch: bool = False, cache_dir: str | None = None, revision: str = "main"
) -> None:
    """``name`` (a short name, Hub id or directory) can be loaded: a directory exists and holds ``config.json``;
    a Hub id is reachable, or cached when the Hub is offline. ``from_scratch`` needs no weights: a built-in
    architecture name passes (an unknown one is refused later with the list of known names)."""
    resolved = resolve_model_name(name)
    shown = name if resolved == name else f"{name} ({resolved})"
    path = Path(resolved).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ValueError(
                f"{flag} {name!r} is a file; pass the directory that holds its config.json (written by "
                "save_pretrained), or a Hub model id."
            )
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{flag} {name!r} is a directory without config.json; pass a directory written by save_pretrained "
                "(a finished run's output_dir or one of its checkpoint-N folders), or a Hub model id."
            )
        check_vision_transformer(path / "config.json", name, flag)
        return
    if _looks_like_path(resolved):
        raise FileNotFoundError(
            f"{flag} {name!r}: the directory does not exist; pass an existing checkpoint directory (one with "
            "config.json) or a Hub model id such as facebook/deit-tiny-patch16-224."
        )
    if from_scratch or not hub_offline():
        return
    if isinstance(try_to_load_from_cache(resolved, "config.json", cache_dir=cache_dir, revision=revision), str):
        return
    scratch = " or pass --from_scratch to build its architecture with random weights" if name in MODEL_ALIASES else ""
    raise FileNotFoundError(
        f"{flag} {shown!r} is neither a local directory nor in the Hugging Face cache, and the Hub can't be reached "
        f"offline (HF_HUB_OFFLINE is set); download it first (`hf download {resolved}`), unset HF_HUB_OFFLINE"
        f"{scratch}, or pass a local checkpoint directory."
    )


def check_vision_transformer(config_file: Path, name: str, flag: str) -> None:
    """Refuse, before loading it, a model whose ``config.json`` has no patches or no attention heads (a ResNet, say):
    SMMix places its windows by the attention a vision transformer pays to image patches. timm models
    (``timm_wrapper``) name their architecture instead, and are checked once loaded."""
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{flag} {name!r}: {config_file} is not readable JSON ({error}).") from error
    model_type = config.get("model_type", "unknown")
    if model_type == "timm_wrapper" or ("model_type" not in config and "architecture" in config):
        return  # a timm checkpoint: transformers reads a config.json without model_type as TimmWrapperConfig
    declared = {**config, **(config.get("vision_config") or {})}
    patches = "patch_size" in declared or "patch_sizes" in declared
    heads = "num_attention_heads" in declared or "num_heads" in declared
    if not (patches and heads):
        architecture = ", ".join(config.get("architectures") or []) or "no architecture named"
        raise ValueError(
            f"{flag} {name!r} is a {model_type} model ({architecture}), not a vision transformer; SMMix places its "
            "windows by a vision transformer's attention to image patches. docs/backbones.md lists the models that "
            "work."
        )


def check_model_sources(model_args: ModelArguments) -> None:
    """The model under training and the motivator, if any, can be loaded (see :func:`check_model_source`)."""
    hub = {"cache_dir": model_args.cache_dir, "revision": model_args.model_revision}
    check_model_source(model_args.model_name_or_path, "--model", from_scratch=model_args.from_scratch, **hub)
    if model_args.motivator_model:
        check_model_source(model_args.motivator_model, "--motivator_model", **hub)


@contextmanager
def loading_model(name: str, flag: str) -> Iterator[None]:
    """Report a model that fails to load from the Hub (an ``OSError``: not found, no network) as one line."""
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as error:
        reason = " ".join(str(error).split())
        raise ValueError(f"{flag} {name!r} could not be loaded: {reason}") from error


def _latest_checkpoint(directory: Path) -> str | None:
    return get_last_checkpoint(directory) if directory.is_dir() else None


def check_resume_checkpoint(args: SMMixConfig) -> None:
    """``--resume_from_checkpoint`` names a checkpoint directory written by a run (it holds trainer_state.json), whose
    files all load without running code (:func:`~smmix_hf.checkpoint_files.check_checkpoint_files`)."""
    checkpoint = args.resume_from_checkpoint
    if not args.do_train or not checkpoint:
        return
    path = Path(checkpoint).expanduser()
    if path.is_dir() and (path / CHECKPOINT_STATE).is_file():
        check_checkpoint_files(path, trusted=args.trust_checkpoint)
        return
    latest = next(
        (found for found in (_latest_checkpoint(path), _latest_checkpoint(Path(args.output_dir or "."))) if found),
        None,
    )
    hint = f" (the latest one there is {latest})" if latest else ""
    if not path.exists():
        problem = "does not exist"
    elif not path.is_dir():
        problem = "is a file"
    else:
        problem = f"is a directory without {CHECKPOINT_STATE}, so not a checkpoint"
    raise FileNotFoundError(
        f"--resume_from_checkpoint {checkpoint!r} {problem}; pass a checkpoint-N directory of an earlier run{hint}, "
        "or drop --resume_from_checkpoint to start afresh."
    )


def check_output_path(output_dir: str | None) -> None:
    """``--output_dir`` is a directory or can become one: neither it nor a folder above it is a file."""
    if not output_dir:
        return
    path = Path(output_dir).expanduser()
    for candidate in (path, *path.parents):
        if not candidate.exists():
            continue
        if candidate.is_dir():
            return
        where = "is an existing file" if candidate == path else f"is inside {str(candidate)!r}, which is a file"
        raise ValueError(f"--output_dir {output_dir!r} {where}; choose a directory path (it is created if missing).")
