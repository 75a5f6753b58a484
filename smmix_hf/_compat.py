"""Every override of a private ``transformers.Trainer`` method, and every workaround for an upstream fault.

``SMMixTrainer`` overrides public hooks (``compute_loss``, ``log``, ``save_model``,
``create_model_card``) in ``trainer.py``. What the Trainer offers no hook for lives here, so that a
Trainer upgrade has one file to check:

- ``_load_from_checkpoint`` / ``_load_best_model``: resuming and ``load_best_model_at_end`` load weights with
  ``load_state_dict(strict=False)``, skipping the key renames of ``from_pretrained`` (transformers#43701, below).
  Both also restore the separate region head, which lives outside the model's weight files
  (:mod:`smmix_hf.backbones.region_head`).
- ``_save_rng_state`` / ``_load_rng_state``: the mixing draws' generators travel with the checkpoint's
  RNG states and must be loaded before the first step; no callback point sees the checkpoint path then. They are
  read weights-only, as transformers reads its own RNG states (:mod:`smmix_hf.checkpoint_files`).
- ``_init_training_state`` / ``_run_epoch``: a stream resumes at its saved position instead of reading
  and discarding batches; the Trainer has no hook around its data loader or its epoch loop.
- ``_save_checkpoint``: a diverged run must stop *before* its checkpoint is written; ``on_save`` runs after.
- ``_prepare_inputs``: ``--decode_on_device`` decodes the batch's JPEG bytes on the device
  (:meth:`TrainerPrivateOverrides.decode_batch`, which :class:`~smmix_hf.device_trainer.DeviceDecodeTrainer`
  overrides) while the bytes are still on the host, before the Trainer moves the batch; ``compute_loss`` sees the
  batch only after that move.

Faults of libraries worked around (each applies to the versions named; the tests in
``tests/test_compat.py`` reproduce those that can be reproduced and fail once upstream fixes them,
which is the signal to delete the workaround):

- **transformers#43701** (https://github.com/huggingface/transformers/issues/43701, open; fix proposed in
  PR #48822), transformers 5.0 through at least 5.24: ``save_pretrained`` writes the original key
  format (``vit.encoder.layer.0.attention.attention.query``) and ``Trainer._load_from_checkpoint`` feeds
  it to ``load_state_dict(strict=False)`` (``_load_best_model`` likewise), so renamed tensors silently keep
  their current values.
  :func:`restore_checkpoint_weights` loads through ``from_pretrained`` (which renames) and copies strictly.
- **datasets 5.2, worker epoch** (no report of this fault upstream; the check that drops the position came
  with datasets#7447 / PR #7451, datasets 3.4): a DataLoader worker's saved ``epoch`` is
  sometimes 0 although it read another epoch, and a position whose epoch does not match is ignored at
  load. Seen in 3 of 6 runs, so not reproducible in a test; ``smmix_hf.stream_resume.loader_state_for_resume``
  writes the Trainer's epoch into the state.
- **datasets 5.2, shuffled streams** (no report of this fault upstream; datasets#7901, open, is the nearest:
  shuffled sources that do not resume): a worker first loads its position into
  the whole stream, whose per-shard lists are longer than the worker's, and fails with ``IndexError``;
  ``loader_state_for_resume`` pads the lists (that first load is discarded anyway).
- **libjpeg-turbo 2.1.5, cropped columns under DCT scaling** (no report of this fault upstream; Debian 12's
  library): ``jpeg_crop_scanline`` sizes each component's band from its sampling factor alone, so a 4:1:0 JPEG
  decoded at 1/2 or 1/4 scale gets an edge column repeated into the band. The workaround lives in C, beside the
  call: ``columns_crop_exactly`` in ``smmix_hf/data/_jpeg_region.c`` decodes such files at full width;
  ``tests/test_data_crop_decode.py::test_a_4_1_0_jpeg_decodes_exactly_at_every_scale`` keeps it honest.
- **accelerate 1.15 + torchdata 0.11, early workers** (accelerate#4204, open; fix proposed in PR #4234):
  ``DataLoaderAdapter.__init__`` asks the new ``StatefulDataLoader`` for its state, which starts its workers
  with epoch 0 before the Trainer sets the epoch (#4204 reports the same eager call drawing the epoch-0
  shuffle); ``smmix_hf.stream_resume.restart_epoch_afresh`` drops that early iterator.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import torch
from torch import nn
from transformers import PreTrainedModel, Trainer
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME

from smmix_hf.backbones.region_head import load_region_head, region_head_keys
from smmix_hf.checkpoint_files import CheckpointFileRefused, load_plain
from smmix_hf.stream_resume import (
    StreamPosition,
    load_stream_position,
    loader_state_for_resume,
    restart_epoch_afresh,
    save_stream_position,
)

__all__ = ["SAMPLER_STATE_NAME", "TrainerPrivateOverrides", "restore_checkpoint_weights"]

SAMPLER_STATE_NAME = "smmix_sampler_state.pth"


def restore_checkpoint_weights(model: PreTrainedModel, checkpoint: str) -> bool:
    """Copy the weights saved in ``checkpoint`` into ``model`` with ``from_pretrained``'s key renames
    (transformers#43701); False if it holds no safetensors weights. A missing tensor is an error, except
    the separate region head's, which is restored from its own file."""
    has_weights = any(
        os.path.isfile(os.path.join(checkpoint, name)) for name in (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME)
    )
    if not has_weights:
        return False
    saved = type(model).from_pretrained(checkpoint, config=model.config)
    missing, unexpected = model.load_state_dict(saved.state_dict(), strict=False)
    if unexpected or set(missing) - region_head_keys(model):
        raise RuntimeError(f"{checkpoint} does not match the model: missing {missing}, unexpected {unexpected}.")
    load_region_head(model, checkpoint)
    return True


class TrainerPrivateOverrides(Trainer):
    """The private-method overrides of ``SMMixTrainer`` (see the module docstring for why each exists).

    The subclass provides ``method`` (``state_dict`` / ``load_state_dict``) and
    ``stop_if_nonfinite(before: str)``.
    """

    _stream_loader: Any = None
    _stream_epoch: int = 0
    _stream_resume: StreamPosition | None = None

    @property
    def streams_training_data(self) -> bool:
        return isinstance(self.train_dataset, datasets.IterableDataset)

    def decode_batch(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The batch as the Trainer then moves it to the device; unchanged here."""
        return inputs

    def _prepare_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return super()._prepare_inputs(self.decode_batch(inputs))

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        self.stop_if_nonfinite(f"saving the checkpoint of step {self.state.global_step}")
        super()._save_checkpoint(model, trial)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        model = model if model is not None else self.model
        stock_load = partial(super()._load_from_checkpoint, resume_from_checkpoint, model)
        self._restore_weights(resume_from_checkpoint, model, stock_load)

    def _load_best_model(self) -> None:
        best = self.state.best_model_checkpoint
        if best is None:
            super()._load_best_model()
        else:
            self._restore_weights(best, self.model, super()._load_best_model)

    def _restore_weights(self, checkpoint: str, model: nn.Module, stock_load: Callable[[], None]) -> None:
        """``checkpoint``'s weights into ``model`` through :func:`restore_checkpoint_weights` where the model is a
        plain ``PreTrainedModel`` (no FSDP / DeepSpeed), else the Trainer's own ``stock_load`` and the region head."""
        unwrapped = self.accelerator.unwrap_model(model)
        plain = not (self.is_fsdp_enabled or self.is_deepspeed_enabled) and isinstance(unwrapped, PreTrainedModel)
        if not (plain and restore_checkpoint_weights(unwrapped, checkpoint)):
            stock_load()
            load_region_head(unwrapped, checkpoint)

    def _save_rng_state(self, output_dir: str) -> None:
        super()._save_rng_state(output_dir)
        if self.args.should_save:
            torch.save(self.method.state_dict(), os.path.join(output_dir, SAMPLER_STATE_NAME))
        if self._stream_loader is not None:
            save_stream_position(
                self._stream_loader, self._stream_epoch, output_dir, self.args.process_index, self.args.world_size
            )

    def _load_rng_state(self, checkpoint: str | None) -> None:
        try:
            super()._load_rng_state(checkpoint)
        except pickle.UnpicklingError as error:  # transformers reads rng_state.pth weights-only and refuses a pickle
            files = ", ".join(str(path) for path in sorted(Path(checkpoint or ".").glob("rng_state*.pth")))
            raise CheckpointFileRefused(
                f"{files} was refused: transformers reads it weights-only and it holds a pickled Python object, so the "
                "checkpoint may have been tampered with."
            ) from error
        if checkpoint is not None and os.path.isfile(os.path.join(checkpoint, SAMPLER_STATE_NAME)):
            state = load_plain(os.path.join(checkpoint, SAMPLER_STATE_NAME), trusted=self.args.trust_checkpoint)
            self.method.load_state_dict(state)

    def _init_training_state(
        self,
        max_steps: int,
        num_update_steps_per_epoch: int,
        num_train_epochs: int,
        resume_from_checkpoint: str | None,
        trial: Any,
    ) -> tuple[int, int]:
        """For a stream, resume in the saved epoch at the saved position instead of skipping batches."""
        epochs_trained, steps_to_skip = super()._init_training_state(
            max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial
        )
        self._stream_resume = None
        if resume_from_checkpoint is None or not self.streams_training_data or self.args.ignore_data_skip:
            return epochs_trained, steps_to_skip
        position = load_stream_position(
            resume_from_checkpoint, self.args.process_index, trusted=self.args.trust_checkpoint
        )
        if position is None:
            raise ValueError(
                f"{resume_from_checkpoint} holds no stream position for process {self.args.process_index}, so the "
                "stream would restart from its beginning; pass --ignore_data_skip true to accept that."
            )
        position.check_layout(self.args.world_size, self.args.dataloader_num_workers, resume_from_checkpoint)
        if position.epoch_finished:
            # The saved epoch was read to its end: start the next one afresh.
            position = StreamPosition(position.epoch + 1, False, {}, position.num_processes, position.num_workers)
            self.state.epoch = float(position.epoch)
        self._stream_resume = position
        return position.epoch, 0

    def _run_epoch(self, **kwargs: Any) -> Any:
        """Remember the stream's loader and epoch for checkpoints; load the saved position when resuming."""
        if not self.streams_training_data:
            return super()._run_epoch(**kwargs)
        loader, epoch = kwargs["train_dataloader"], kwargs["epoch"]
        self._stream_loader, self._stream_epoch = loader, epoch
        if self._stream_resume is not None and self._stream_resume.epoch == epoch:
            if self._stream_resume.loader_state:
                loader.load_state_dict(loader_state_for_resume(self._stream_resume, loader.dataset.num_shards))
            else:
                restart_epoch_afresh(loader)
            self._stream_resume = None
        result = super()._run_epoch(**kwargs)
        if not self.control.should_training_stop:
            # A stream has no length, so the Trainer's fractional epoch never reaches the next whole number.
            self.state.epoch = float(epoch + 1)
        return result
