"""``python -m smmix_hf.analyze``: Fig. 5a mixed-image accuracy and the show-mix grid, on real digits."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from tiny_data import digits_processor, digits_split
from tiny_models import tiny_vit

from smmix_hf.analyze import BatchMixer, mixed_accuracy
from smmix_hf.analyze.__main__ import main
from smmix_hf.analyze.mixed_accuracy import score_mixed_batch
from smmix_hf.backbones.probe import SMMixProbe
from smmix_hf.data.digits import load_digits_dataset
from smmix_hf.methods import build_analysis_method
from smmix_hf.mixing import smmix_images


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("checkpoint")
    torch.manual_seed(0)
    tiny_vit(id2label={i: str(i) for i in range(10)}).save_pretrained(directory)
    digits_processor().save_pretrained(directory)
    return str(directory)


def test_top1_and_top2_hits_follow_fig_5a():
    logits = torch.tensor([[5.0, 4, 0, 0], [0, 5, 4, 0], [0, 0, 5, 4], [4, 0, 0, 5]])
    labels, source_index = torch.tensor([0, 1, 2, 3]), torch.tensor([3, 2, 1, 0])
    top1, top2, valid = score_mixed_batch(logits, labels, source_index)
    assert top1.tolist() == [True, True, True, True]  # each prediction is the source's or the target's label
    assert top2.tolist() == [False, True, False, True]  # {0,1} vs {0,3}; {1,2} ok; {2,3} vs {2,1}; {3,0} ok
    assert valid.all()
    _, _, valid = score_mixed_batch(logits, torch.tensor([0, 1, 1, 0]), source_index)
    assert valid.tolist() == [False, False, False, False]  # pairs with one label are not counted


def test_smmix_eval_mixes_use_the_models_own_attention_and_leave_it_untouched():
    torch.manual_seed(0)
    model = tiny_vit().train()
    images, labels = torch.randn(6, 3, 32, 32), torch.arange(6)
    hooks_before = sum(len(module._forward_hooks) for module in model.modules())
    example = BatchMixer(model, "smmix", seed=3)(images, labels)
    assert model.training and hooks_before == sum(len(module._forward_hooks) for module in model.modules())
    probe = SMMixProbe(model)
    model.eval()
    with torch.no_grad(), probe.reading_attention((32, 32)):
        model(pixel_values=images)
    probe.remove()
    region = build_analysis_method("smmix", seed=3).draw((32, 32), (4, 4)).region_size
    expected = smmix_images(images, probe.scores, region)
    torch.testing.assert_close(example.mixed, expected.images)
    torch.testing.assert_close(example.scores, probe.scores)


def test_cutmix_boxes_depend_on_the_seed_only():
    images, labels = torch.randn(4, 3, 32, 32), torch.arange(4)
    first = BatchMixer(tiny_vit(), "cutmix", seed=1)(images, labels)
    second = BatchMixer(tiny_vit(hidden_size=48), "cutmix", seed=1)(images, labels)
    torch.testing.assert_close(first.mixed, second.mixed)
    assert first.source_fraction == second.source_fraction


def test_mixed_accuracy_restores_training_mode_and_counts_mixed_images():
    model = tiny_vit().train()
    result = mixed_accuracy(model, digits_split("validation", 40), "cutmix", batch_size=16, seed=0)
    assert model.training
    assert 0 < result.images <= 40 and 0.0 <= result.top2 <= result.top1 <= 1.0


def test_cli_mixed_accuracy_writes_both_methods(checkpoint, tmp_path, capsys):
    output = tmp_path / "fig5a.json"
    common = ["--model", checkpoint, "--dataset", "sklearn-digits", "--crop_pct", "1", "--max_samples", "64"]
    assert main(["mixed-accuracy", *common, "--method", "smmix", "cutmix", "--json", str(output)]) == 0
    results = json.loads(output.read_text())["results"]
    assert [entry["method"] for entry in results] == ["smmix", "cutmix"]
    assert all(0 < entry["images"] <= 64 and 0.0 <= entry["top2"] <= entry["top1"] <= 1.0 for entry in results)
    assert "smmix" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["smmix", "cutmix"])
def test_cli_show_mix_writes_a_png_grid(checkpoint, tmp_path, method):
    output = tmp_path / f"{method}.png"
    common = ["--model", checkpoint, "--dataset", "sklearn-digits", "--crop_pct", "1", "--max_samples", "40"]
    assert main(["show-mix", *common, "--method", method, "--num", "3", "--output", str(output)]) == 0
    with Image.open(output) as image:
        assert image.mode == "RGB" and image.width > 5 * 128 and image.height > 3 * 128


def test_cli_reads_an_image_folder(checkpoint, tmp_path):
    rows = load_digits_dataset(seed=0)["validation"].select(range(24))
    for index, row in enumerate(rows):
        folder = tmp_path / "images" / str(row["label"])
        folder.mkdir(parents=True, exist_ok=True)
        row["image"].save(folder / f"{index}.png")
    output = tmp_path / "folder.json"
    arguments = ["--model", checkpoint, "--data_dir", str(tmp_path / "images"), "--crop_pct", "1"]
    assert main(["mixed-accuracy", *arguments, "--method", "cutmix", "--json", str(output)]) == 0
    assert json.loads(output.read_text())["results"][0]["images"] > 0


def test_bad_input_gets_a_one_line_error(checkpoint):
    with pytest.raises(SystemExit):
        main(["mixed-accuracy", "--model", checkpoint, "--dataset", "sklearn-digits", "--data_dir", "x"])
    with pytest.raises(ValueError, match="label column 'digit' is not in the data"):
        main(["mixed-accuracy", "--model", checkpoint, "--dataset", "sklearn-digits", "--label_column", "digit"])
    with pytest.raises(ValueError, match="method must be one of smmix, cutmix"):
        BatchMixer(tiny_vit(), "mixup")
