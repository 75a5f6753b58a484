"""The saved model in ``pipeline("image-classification")`` predicts what the run's evaluation predicted, image for
image: the image processor saved in the output directory reproduces the evaluation transform."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForImageClassification, pipeline

from smmix_hf.cli.parser import parse_args
from smmix_hf.cli.train import main
from smmix_hf.data.images import decode_image
from smmix_hf.data.pipeline import transform_settings
from smmix_hf.data.sources import load_image_dataset
from smmix_hf.data.transforms import build_eval_transform
from smmix_hf.models import build_image_processor

QUICK = ["--max_steps", "20", "--max_eval_samples", "60", "--disable_tqdm", "true", "--report_to", "none"]


@pytest.mark.parametrize("recipe", [[], ["--crop_pct", "0.875"]], ids=["demo", "crop_pct_0.875"])
def test_pipeline_top1_equals_the_runs_eval_top1_image_for_image(tmp_path, recipe):
    argv = ["--config", "demo", "--output_dir", str(tmp_path / "run"), *QUICK, *recipe]
    metrics = main(argv)

    # The run's evaluation, image for image: its eval transform, rebuilt from the same arguments, on the saved model.
    model_args, data_args, training_args = parse_args(argv)
    model = AutoModelForImageClassification.from_pretrained(training_args.output_dir).eval()
    images_and_labels = load_image_dataset(data_args, seed=training_args.seed).validation
    images = [decode_image(row[data_args.image_column_name]) for row in images_and_labels]
    labels = images_and_labels[data_args.label_column_name]
    processor = build_image_processor(model, model_args.model_name_or_path, model_args.from_scratch)
    eval_transform = build_eval_transform(transform_settings(processor, data_args))
    with torch.no_grad():
        logits = model(pixel_values=torch.stack([eval_transform(image) for image in images])).logits
    run_top1 = logits.argmax(-1).tolist()
    assert sum(p == y for p, y in zip(run_top1, labels, strict=True)) / len(labels) == pytest.approx(
        metrics["eval_top1"]
    )
    assert len(set(run_top1)) > 1  # not one class for every image: the comparison below is image for image

    classifier = pipeline("image-classification", model=training_args.output_dir, device="cpu")
    pipeline_top1 = [model.config.label2id[result[0]["label"]] for result in classifier(images, top_k=1)]
    assert pipeline_top1 == run_top1
