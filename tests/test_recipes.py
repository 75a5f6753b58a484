"""The recipes shipped in smmix_hf/recipes/ (``--config <name>``): each paper recipe parses as written, cites its
table, and trains for 2 steps with tiny overrides (a small model of the same architecture, the bundled digits, no
network); the repository's configs/ points at the same files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from data_files import records, single_intra_op_thread, write_image_folder
from tiny_models import tiny_vit
from transformers import ViTImageProcessor

from smmix_hf.cli.parser import parse_args
from smmix_hf.cli.train import main
from smmix_hf.methods import MixSettings
from smmix_hf.methods.smmix import describe_motivation_warmup
from smmix_hf.recipes import RECIPES_DIR, recipe_names, resolve_recipe

CONFIGS = RECIPES_DIR
REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY_VIT = "image_size=32,patch_size=8,hidden_size=32,num_hidden_layers=1,num_attention_heads=2,intermediate_size=64"
TINY = {
    "deit": TINY_VIT,
    "swin": "image_size=128,patch_size=4,embed_dim=24,window_size=4",
    "pvt": "image_size=128",
}
PAPER_RECIPES = {
    "deit_tiny_smmix": ("deit-tiny", "DeiT-T top-1 72.2"),
    "deit_small_smmix": ("deit-small", "DeiT-S top-1 79.8"),
    "deit_base_smmix": ("deit-base", "DeiT-B top-1 81.8"),
    "swin_tiny_smmix": ("swin-tiny", "Swin-T top-1 81.2"),
    "pvt_tiny_smmix": ("pvt-tiny", "PVT-T top-1"),
    "pvt_small_smmix": ("pvt-small", "PVT-S row of paper"),
}
one_thread = pytest.fixture(autouse=True)(single_intra_op_thread)
DRY_RUN = [
    "--max_steps", "2", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
    "--max_eval_samples", "8", "--bf16", "false", "--use_cpu", "true", "--dataloader_num_workers", "0",
    "--dataloader_persistent_workers", "false", "--eval_strategy", "no", "--save_strategy", "no",
    "--load_best_model_at_end", "false", "--report_to", "none", "--disable_tqdm", "true",
]  # fmt: skip


def test_every_recipe_is_tested():
    assert set(recipe_names()) == {*PAPER_RECIPES, "finetune_deit_small", "demo"}


def test_repository_configs_are_the_packaged_recipes():
    """``configs/<name>.yaml`` (README, Makefile) and ``--config <name>`` read the same file."""
    linked = {path.stem: path.resolve() for path in REPO_CONFIGS.glob("*.yaml")}
    assert linked == {name: (RECIPES_DIR / f"{name}.yaml").resolve() for name in recipe_names()}


def test_config_takes_a_name_or_a_path(tmp_path, monkeypatch):
    assert resolve_recipe("demo") == resolve_recipe("demo.yaml") == RECIPES_DIR / "demo.yaml"
    own = tmp_path / "demo"
    own.write_text("model: deit-small\n")
    monkeypatch.chdir(tmp_path)
    assert resolve_recipe("demo").resolve() == own, "a file that exists wins over the packaged name"
    assert parse_args(["--config", "demo", "--output_dir", "x"])[0].model_name_or_path == "deit-small"
    with pytest.raises(
        FileNotFoundError,
        match=r"config 'dmo' is neither a file nor a packaged recipe; did you mean "
        r"'demo'\? pass a path to a YAML file or one of: deit_base_smmix, .*, swin_tiny_smmix\.$",
    ):
        resolve_recipe("dmo")  # fmt: skip


@pytest.mark.parametrize("name", sorted(PAPER_RECIPES))
def test_paper_recipe_as_written(name):
    recipe = CONFIGS / f"{name}.yaml"
    model, citation = PAPER_RECIPES[name]
    header = recipe.read_text().split("\n", 2)
    assert header[0].startswith("# ") and "Tab. 1" in " ".join(header[:2]) and citation in recipe.read_text()
    model_args, data_args, args = parse_args(["--config", str(recipe), "--use_cpu", "true"])  # bf16 needs a GPU
    assert model_args.model_name_or_path == model and model_args.from_scratch
    assert data_args.dataset_name == "ILSVRC/imagenet-1k"
    assert (data_args.auto_augment, data_args.random_erasing, data_args.interpolation) == (
        "rand-m9-mstd0.5-inc1", 0.25, "bicubic",
    )  # fmt: skip
    assert (data_args.base_learning_rate, data_args.base_batch_size) == (5e-4, 512)
    assert args.num_train_epochs == 300 and args.weight_decay == 0.05 and args.per_device_train_batch_size == 128
    assert args.mix_method == "smmix" and args.mixup_switch_prob == 0.5 and args.mixup_alpha == 0.8
    assert args.motivation_warmup_ratio == 0.0 and args.motivation_warmup_epochs == 0.0  # the paper's schedule
    assert args.label_smoothing_factor == 0.1 and args.lr_scheduler_type.value == "cosine_with_min_lr"
    warmup_epochs = 20 if name.startswith("swin") else 5
    assert args.warmup_steps == pytest.approx(warmup_epochs / 300, abs=1e-6)
    _, other_source, _ = parse_args(
        ["--config", str(recipe), "--use_cpu", "true", "--dataset_name", "", "--train_dir", "x"]
    )
    assert other_source.dataset_name == "" and other_source.train_dir == "x"
    if name == "swin_tiny_smmix":
        assert model_args.config_overrides == "drop_path_rate=0.2" and args.max_grad_norm == 5.0


def test_a_paper_recipe_takes_a_warmup_in_epochs_from_the_command_line():
    """The recipes pin motivation_warmup_ratio 0 (the paper's schedule); a flag for the epoch form still works."""
    _, _, args = parse_args(["--config", "deit_tiny_smmix", "--use_cpu", "true", "--motivation_warmup_epochs", "5"])
    settings = MixSettings.from_config(args)
    assert (settings.motivation_warmup_epochs, settings.motivation_warmup_ratio) == (5.0, 0.0)
    assert describe_motivation_warmup(settings) == "5 epochs"


@pytest.mark.parametrize("name", sorted(PAPER_RECIPES))
def test_paper_recipe_trains_two_steps_with_tiny_overrides(name, tmp_path, caplog):
    family = name.split("_")[0]
    argv = [
        "--config", str(CONFIGS / f"{name}.yaml"), "--dataset_name", "sklearn-digits",
        "--config_overrides", TINY[family], "--output_dir", str(tmp_path), *DRY_RUN,
    ]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="smmix_hf"):
        metrics = main(argv)
    assert 0.0 <= metrics["eval_top1"] <= 1.0
    assert "learning rate 3.90625e-06 = base_learning_rate 0.0005 x global batch 4" in caplog.text


def test_finetuning_recipe_replaces_the_head_of_a_checkpoint(tmp_path, caplog):
    recipe = CONFIGS / "finetune_deit_small.yaml"
    assert "Not a table of the paper" in recipe.read_text().split("\n", 2)[1]
    model_args, _, args = parse_args(["--config", str(recipe)])
    assert model_args.model_name_or_path == "deit-small" and not model_args.from_scratch
    assert model_args.ignore_mismatched_sizes and args.load_best_model_at_end
    checkpoint = tmp_path / "pretrained"
    tiny_vit().save_pretrained(checkpoint)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(checkpoint)
    folder = write_image_folder(tmp_path / "images", records(12, 3))
    argv = [
        "--config", str(recipe), "--model", str(checkpoint), "--train_dir", str(folder),
        "--validation_dir", str(folder), "--output_dir", str(tmp_path / "run"), *DRY_RUN,
    ]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="smmix_hf"):
        metrics = main(argv)
    assert 0.0 <= metrics["eval_top1"] <= 1.0
    assert "learning rate 7.8125e-07 = base_learning_rate 0.0001 x global batch 4" in caplog.text
