"""Which streamed training samples each process receives, through the Trainer's own data loader.

Run under ``accelerate launch`` (2 CPU processes): ``stream_shard_ids.py RECORD_DIR LAYOUTS_JSON``, where
the JSON file maps layout names to ``run_smmix.py`` arguments. For every layout it builds the datasets as
``run_smmix.py`` does, asks ``SMMixTrainer.get_train_dataloader()`` for the loader (accelerate divides the
stream among the processes there) and iterates two epochs the way the training loop does (``set_epoch``,
then a full pass), without any forward or backward. Labels are the sample ids. Every process writes
``RECORD_DIR/<layout>-rank<k>.json`` as soon as a layout is done.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from smmix_hf.cli.parser import parse_args
from smmix_hf.cli.train import apply_stream_plan
from smmix_hf.data.labels import model_label_names
from smmix_hf.data.pipeline import prepare_datasets, transform_settings
from smmix_hf.data.sources import load_image_dataset
from smmix_hf.data.transforms import build_eval_transform, collate_image_batch
from smmix_hf.models import build_image_processor, load_model
from smmix_hf.trainer import SMMixTrainer


def record_layout(record_dir: str, layout: str, argv: list[str]) -> None:
    model_args, data_args, args = parse_args(argv)
    splits = load_image_dataset(data_args, seed=args.seed)
    names = model_label_names(splits, data_args, model_args.model_name_or_path, from_scratch=True)
    model = load_model(
        model_args.model_name_or_path,
        id2label=dict(enumerate(names)),
        from_scratch=True,
        config_overrides=model_args.config_overrides,
    )
    settings = transform_settings(build_image_processor(model, model_args.model_name_or_path, True), data_args)
    transform = build_eval_transform(settings)
    data = prepare_datasets(splits, transform, transform, data_args, args, label2id=model.config.label2id)
    apply_stream_plan(args, data)
    trainer = SMMixTrainer(model=model, args=args, train_dataset=data.train, data_collator=collate_image_batch)
    loader = trainer.get_train_dataloader()
    epochs = []
    for epoch in range(2):
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        epochs.append([int(label) for batch in loader for label in batch["labels"]])
    record = {
        "epochs": epochs,
        "world_size": args.world_size,
        "n_shards": data.train.n_shards,
        "loader": type(loader).__name__,
        "dataset": type(loader.dataset).__name__,
    }
    rank = int(os.environ.get("RANK", "0"))
    Path(record_dir, f"{layout}-rank{rank}.json").write_text(json.dumps(record))
    trainer.accelerator.wait_for_everyone()


if __name__ == "__main__":
    record_dir, layouts = sys.argv[1:]
    for layout, argv in json.loads(Path(layouts).read_text()).items():
        record_layout(record_dir, layout, argv)
