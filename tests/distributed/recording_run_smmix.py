"""run_smmix.py with a recorder around it, for the 2-process test.

Every process writes what it trained on and whether it wrote a model card to
``$SMMIX_RECORD_DIR/rank<k>.json`` before it exits. Training uses the deterministic evaluation
transform so that each image can be identified by the hash of its clean pixels.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import smmix_hf.cli.train as train_cli
import smmix_hf.trainer as trainer_module
from smmix_hf.data.transforms import build_eval_transform

record = {"images": [], "model_cards": 0}
compute_loss = trainer_module.SMMixTrainer.compute_loss
write_model_card = trainer_module.write_model_card


def recording_compute_loss(self, model, inputs, *args, **kwargs):
    if model.training:
        for image in inputs["pixel_values"]:
            record["images"].append(hashlib.sha1(image.detach().cpu().numpy().tobytes()).hexdigest())
    return compute_loss(self, model, inputs, *args, **kwargs)


def recording_write_model_card(*args, **kwargs):
    record["model_cards"] += 1
    return write_model_card(*args, **kwargs)


trainer_module.SMMixTrainer.compute_loss = recording_compute_loss
trainer_module.write_model_card = recording_write_model_card
train_cli.build_train_transform = build_eval_transform

if __name__ == "__main__":
    rank = int(os.environ.get("RANK", "0"))
    metrics = train_cli.main()
    record["metrics"] = metrics
    Path(os.environ["SMMIX_RECORD_DIR"], f"rank{rank}.json").write_text(json.dumps(record))
