"""Each upstream fault that ``smmix_hf/_compat.py`` works around, reproduced with the stock library.

These tests pass while the fault exists. When one fails after an upgrade, upstream has fixed it: delete
the workaround in ``_compat.py`` and this test.
"""

from __future__ import annotations

import torch
from tiny_models import tiny_vit
from transformers import Trainer, TrainingArguments

from smmix_hf._compat import restore_checkpoint_weights


def test_transformers_43701_stock_resume_leaves_renamed_weights_unloaded(tmp_path):
    """Trainer._load_from_checkpoint feeds save_pretrained's original-format keys to load_state_dict(strict=False).

    https://github.com/huggingface/transformers/issues/43701 (transformers 5.0 through at least 5.24).
    """
    torch.manual_seed(0)
    trained = tiny_vit()
    trained.save_pretrained(tmp_path / "checkpoint")
    torch.manual_seed(1)
    fresh = tiny_vit()
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to="none", use_cpu=True)
    Trainer(model=fresh, args=args)._load_from_checkpoint(str(tmp_path / "checkpoint"))
    unloaded = [
        name for name, value in fresh.state_dict().items() if not torch.equal(value, trained.state_dict()[name])
    ]
    assert unloaded, "transformers#43701 is fixed: delete restore_checkpoint_weights and _load_from_checkpoint"

    torch.manual_seed(1)
    restored = tiny_vit()
    assert restore_checkpoint_weights(restored, str(tmp_path / "checkpoint"))
    for name, value in restored.state_dict().items():
        torch.testing.assert_close(value, trained.state_dict()[name], rtol=0, atol=0)
