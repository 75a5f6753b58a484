"""What every short test run shares, as an ``SMMixConfig`` builder (the ``make_config`` fixture uses it too)."""

from __future__ import annotations

from pathlib import Path

import torch

from smmix_hf import SMMixConfig

# Each test passes what it is about (steps, method, batch size ...).
TEST_RUN_DEFAULTS: dict[str, object] = dict(
    per_device_train_batch_size=8,
    save_strategy="no",
    report_to="none",
    use_cpu=True,
    disable_tqdm=True,
    dataloader_num_workers=0,
    seed=0,
)


def short_run_config(output_dir: str | Path, **overrides: object) -> SMMixConfig:
    """An ``SMMixConfig`` for a short CPU run writing to ``output_dir``: :data:`TEST_RUN_DEFAULTS` and ``overrides``."""
    return SMMixConfig(**{"output_dir": str(output_dir), **TEST_RUN_DEFAULTS, **overrides})


def deterministic_task_step(
    model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> dict[str, torch.Tensor]:
    """One training call of ``SMMixTask`` as the reference steps take it: every batch SMMix, the window side half the
    grid, no warm-up; the backward has run and the task's hooks are removed. Returns the task's output dict."""
    from smmix_hf import MixSettings, SMMixTask

    settings = MixSettings(
        mixup_switch_prob=1.0, region_scale_min=0.5, region_scale_max=0.5, motivation_warmup_ratio=0.0
    )
    task = SMMixTask(model, settings=settings, seed=0)
    model.train()
    out = task(images, labels)
    out["loss"].backward()
    task.remove_hooks()
    return out
