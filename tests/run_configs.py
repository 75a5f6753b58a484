"""What every short test run shares, as an ``SMMixConfig`` builder (the ``make_config`` fixture uses it too)."""

from __future__ import annotations

from pathlib import Path

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
