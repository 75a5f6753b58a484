"""Every Hub id a short name resolves to, mirrored in ``tests/fixtures/hub/<id>/``: the facts of its
``config.json`` / ``preprocessor_config.json``, the transform read from it, ``--from_scratch`` building the
same architecture, and one fine-tuning step of ``run_smmix.py`` at the checkpoint's real resolution.

Where the facts come from (Hub files as published; read through stored copies of the Hub pages):
- ``facebook/deit-{tiny,small,base}-patch16-224``: ``preprocessor_config.json`` is the 160-byte file of the
  repos' first commit, unchanged since: ``size`` 224, mean/std 0.5, no ``feature_extractor_type``, so
  transformers picks the ``vit`` processor (``ViTImageProcessor``: squash to 224, bilinear, no crop).
  ``config.json`` (69.6 kB): ``ViTForImageClassification``, ``model_type`` vit, 12 layers, patch 16, widths
  192 / 384 / 768 with 3 / 6 / 12 heads, 1000 ImageNet classes.
- ``facebook/deit-{tiny,small,base}-distilled-patch16-224``: ``DeiTFeatureExtractor`` with ``size`` 224,
  ``crop_size`` 224, bicubic (``resample`` 3), ImageNet mean/std (the tiny repo after "set correct image size
  (#1)", the small repo's first commit; the base repo's file has the same 287 bytes after "Update size", its
  text was not in the stored copies). ``config.json``: ``DeiTForImageClassificationWithTeacher``,
  ``model_type`` deit.
- ``google/vit-base-patch16-224``: ``ViTFeatureExtractor``, ``size`` 224, bilinear (2), mean/std 0.5.
- ``microsoft/swin-{tiny,small,base}-patch4-window7-224``: ``ViTFeatureExtractor``, ``size`` 224, bicubic,
  ImageNet mean/std, no crop; ``config.json`` as the fine-tuned copies inherit it (embed 96 / 96 / 128, depths
  2-2-6-2 / 2-2-18-2 / 2-2-18-2, heads 3-6-12-24 / 3-6-12-24 / 4-8-16-32, window 7, drop path 0.1).
- ``Zetatech/pvt-{tiny,small}-224``: ``PvtConfig`` (depths 2-2-2-2 / 3-4-6-3, widths 64-128-320-512) and the
  ``PvtImageProcessor`` defaults of transformers (224 x 224, bilinear, ImageNet mean/std); the repos' 171-byte
  ``preprocessor_config.json`` text was not in the stored copies.
- ``timm/*``: the timm Hub layout (``architecture``, ``num_classes``, ``num_features``, ``global_pool``,
  ``pretrained_cfg``), ``pretrained_cfg`` written from timm's own default configs of those tags (CaiT: crop_pct
  1.0, fixed input size; PVT-v2: crop_pct 0.9), as ``timm/cait_s24_224.fb_dist_in1k``'s ``config.json`` shows.
- ``facebook/dinov2-small``: ``config.json`` names ``Dinov2Model`` (a backbone, no classifier): 12 layers, width 384,
  6 heads, patch 14, ``image_size`` 518, ``layerscale_value`` 1.0, ``mlp_ratio`` 4, no SwiGLU;
  ``preprocessor_config.json`` is ``BitImageProcessor``: shortest edge 256, centre crop 224, bicubic, ImageNet
  mean/std (the fields a published validator of that repo pins, and the model card: "for a 224x224 image, 1 class
  token + 256 patch tokens"). Built from scratch it takes the recipe's 224 px, as its processor crops.
- ``google/siglip-base-patch16-224``: ``config.json`` names ``SiglipModel`` (image and text towers, no classifier)
  and is sparse: the vision tower is ``SiglipVisionConfig``'s defaults (12 layers, width 768, 12 heads, MLP 3072,
  patch 16, 224 px); ``SiglipImageProcessor`` squashes to 224 x 224, bicubic (``resample`` 3), mean/std 0.5.
- ``id2label``: the 1000 ImageNet-1k names of timm's ``ImageNetInfo`` (the lemmas the Hub configs carry,
  duplicates such as "crane" 134 / 517 included).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from data_files import write_image_folder
from PIL import Image
from sklearn.datasets import load_digits
from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageClassification, DeiTImageProcessor

from smmix_hf.backbones import MODEL_ALIASES, resolve_model_name
from smmix_hf.backbones.transformers_generic import vision_config_of
from smmix_hf.cli.train import main
from smmix_hf.data.transforms import build_eval_transform, build_train_transform, settings_from_image_processor
from smmix_hf.models import load_model

FIXTURES = Path(__file__).parent / "fixtures" / "hub"
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

# One short name per Hub id (the "facebook/deit-small" style spellings resolve to the same ids).
ALIASES = sorted({MODEL_ALIASES[name]: name for name in MODEL_ALIASES if "/" not in name}.items())
HUB_IDS = [hub_id for hub_id, _ in ALIASES]
# CPU seconds for one SMMix step at 224 px, batch 2, measured on 2 cores; over ~40 s per case goes to `make test-full`.
SLOW = {
    "facebook/deit-base-patch16-224",
    "facebook/deit-base-distilled-patch16-224",
    "google/vit-base-patch16-224",
    "microsoft/swin-base-patch4-window7-224",
    "microsoft/swin-small-patch4-window7-224",
    "timm/pvt_v2_b3.in1k",
    "timm/pvt_v2_b4.in1k",
    "timm/pvt_v2_b5.in1k",
    "timm/deit_base_patch16_224.fb_in1k",
    "timm/deit_base_distilled_patch16_224.fb_in1k",
    "timm/swin_small_patch4_window7_224.ms_in1k",
    "timm/swin_base_patch4_window7_224.ms_in1k",
    "google/siglip-base-patch16-224",
    "timm/vit_small_patch14_reg4_dinov2.lvd142m",
}
# Checkpoints that ship a backbone without a classifier: the classifier built from them gets a new head.
HEADLESS = {"facebook/dinov2-small": "Dinov2Model", "google/siglip-base-patch16-224": "SiglipModel"}
# timm checkpoints without a classifier (``num_classes`` 0 in timm's layout); timm's DINOv2 defaults to 518 px.
TIMM_HEADLESS = {"timm/eva02_tiny_patch14_224.mim_in22k", "timm/vit_small_patch14_reg4_dinov2.lvd142m"}
RECIPE_SIDE = 224  # the DeiT recipe's resolution, at which a short name's model is built from scratch
SIZES = ("tiny", "small", "base")
# What each Hub id's processor says: (input side, crop share, filter, mean).
PREPROCESSING = {
    **{f"facebook/deit-{s}-patch16-224": (224, 1.0, "bilinear", [0.5] * 3) for s in ("tiny", "small", "base")},
    **{
        f"facebook/deit-{s}-distilled-patch16-224": (224, 1.0, "bicubic", IMAGENET_MEAN)
        for s in ("tiny", "small", "base")
    },
    "google/vit-base-patch16-224": (224, 1.0, "bilinear", [0.5] * 3),
    **{
        f"microsoft/swin-{s}-patch4-window7-224": (224, 1.0, "bicubic", IMAGENET_MEAN)
        for s in ("tiny", "small", "base")
    },
    **{f"Zetatech/pvt-{s}-224": (224, 1.0, "bilinear", IMAGENET_MEAN) for s in ("tiny", "small")},
    **{f"timm/cait_xxs{d}_224.fb_dist_in1k": (224, 1.0, "bicubic", IMAGENET_MEAN) for d in (24, 36)},
    **{f"timm/pvt_v2_b{b}.in1k": (224, 0.9, "bicubic", IMAGENET_MEAN) for b in range(6)},
    # timm's DeiT and Swin default configs of these tags: crop_pct 0.9, bicubic, ImageNet mean/std.
    **{
        f"timm/deit_{s}{d}_patch16_224.fb_in1k": (224, 0.9, "bicubic", IMAGENET_MEAN)
        for s in SIZES
        for d in ("", "_distilled")
    },
    **{f"timm/swin_{s}_patch4_window7_224.ms_in1k": (224, 0.9, "bicubic", IMAGENET_MEAN) for s in SIZES},
    "facebook/dinov2-small": (224, 224 / 256, "bicubic", IMAGENET_MEAN),
    "google/siglip-base-patch16-224": (224, 1.0, "bicubic", [0.5] * 3),
    # timm's default configs of these tags (EVA-02: OpenAI CLIP mean/std; DINOv2: 518 px, no crop).
    "timm/deit3_small_patch16_224.fb_in1k": (224, 0.9, "bicubic", IMAGENET_MEAN),
    "timm/eva02_tiny_patch14_224.mim_in22k": (224, 0.9, "bicubic", [0.48145466, 0.4578275, 0.40821073]),
    "timm/vit_small_patch14_reg4_dinov2.lvd142m": (518, 1.0, "bicubic", IMAGENET_MEAN),
}


def test_every_alias_target_has_a_fixture():
    assert sorted(PREPROCESSING) == sorted(HUB_IDS)
    for hub_id in HUB_IDS:
        assert (FIXTURES / hub_id / "config.json").is_file(), hub_id
        timm_checkpoint = hub_id.startswith("timm/")  # timm repos carry config.json only
        assert (FIXTURES / hub_id / "preprocessor_config.json").is_file() != timm_checkpoint, hub_id


@pytest.mark.parametrize("hub_id", HUB_IDS)
def test_fixture_facts(hub_id):
    config = AutoConfig.from_pretrained(FIXTURES / hub_id)
    raw = json.loads((FIXTURES / hub_id / "config.json").read_text())
    if hub_id in HEADLESS:
        assert raw["architectures"] == [HEADLESS[hub_id]] and "id2label" not in raw
    elif hub_id in TIMM_HEADLESS:
        assert raw["num_classes"] == 0 and config.num_labels == 0
    else:
        assert config.num_labels == 1000
        assert config.id2label[0] == "tench, Tinca tinca" and config.id2label[999].startswith("toilet tissue")
    if hub_id in HEADLESS:
        vision = vision_config_of(config)
        shape = (vision.hidden_size, vision.num_hidden_layers, vision.num_attention_heads, vision.patch_size)
        assert (shape, vision.image_size) == {
            "facebook/dinov2-small": ((384, 12, 6, 14), 518),
            "google/siglip-base-patch16-224": ((768, 12, 12, 16), 224),
        }[hub_id]
    if hub_id.startswith("facebook/deit-"):
        # DeiT: ViT-format checkpoints; the distilled ones are model_type deit (class + distillation token).
        assert raw["model_type"] == ("deit" if "distilled" in hub_id else "vit")
        width = {"tiny": 192, "small": 384, "base": 768}[hub_id.split("-")[1]]
        assert (raw["hidden_size"], raw["num_hidden_layers"], raw["patch_size"], raw["image_size"]) == (
            width,
            12,
            16,
            224,
        )
    if hub_id.startswith("timm/"):
        # timm Hub layout: the preprocessing lives in pretrained_cfg.
        assert raw["architecture"] == hub_id.split("/")[1].split(".")[0]
        assert raw["pretrained_cfg"]["input_size"] == [3, PREPROCESSING[hub_id][0], PREPROCESSING[hub_id][0]]
        assert raw["pretrained_cfg"]["crop_mode"] == "center"
    side, crop_pct, interpolation, mean = PREPROCESSING[hub_id]
    settings = settings_from_image_processor(AutoImageProcessor.from_pretrained(FIXTURES / hub_id))
    assert (settings.image_size, settings.crop_pct, settings.interpolation) == (side, crop_pct, interpolation)
    assert settings.mean == pytest.approx(tuple(mean))


def test_the_deit_processor_defaults_crop_to_224_after_resizing_to_256():
    # DeiTImageProcessor's class defaults (what fine-tuned DeiT checkpoints save): resize 256, centre-crop 224.
    # Reading `size` alone fed 256 px images to a 224 px model.
    settings = settings_from_image_processor(DeiTImageProcessor(image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD))
    assert (settings.image_size, settings.crop_pct, settings.eval_resize_size) == (224, 0.875, 256)
    image = Image.new("RGB", (300, 280), (10, 20, 30))
    assert build_train_transform(settings)(image).shape == (3, 224, 224)
    assert build_eval_transform(settings)(image).shape == (3, 224, 224)
    # A value the user gives wins over the processor's.
    assert settings_from_image_processor(DeiTImageProcessor(), crop_pct=0.9, interpolation="bilinear").crop_pct == 0.9


def test_a_timm_processor_gives_its_pretrained_cfg():
    processor = AutoImageProcessor.from_pretrained(FIXTURES / "timm/pvt_v2_b0.in1k")
    settings = settings_from_image_processor(processor)
    assert (settings.image_size, settings.crop_pct, settings.eval_resize_size) == (224, 0.9, 248)


def _architecture(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(parameter.shape) for name, parameter in model.named_parameters()}


@pytest.mark.parametrize(("hub_id", "alias"), ALIASES)
def test_from_scratch_builds_the_fixtures_architecture(hub_id, alias):
    labels = {index: str(index) for index in range(10)}
    config = AutoConfig.from_pretrained(FIXTURES / hub_id)
    config.num_labels, config.id2label, config.label2id = 10, labels, {name: index for index, name in labels.items()}
    if config.model_type == "deit":  # the checkpoint names its inference-only two-head class; training uses this
        config.architectures = ["DeiTForImageClassification"]
    if hub_id in HEADLESS:  # built at the recipe's resolution (DINOv2's config says 518 px)
        vision_config_of(config).image_size = RECIPE_SIDE
    if hub_id in TIMM_HEADLESS:
        config.model_args = {"img_size": RECIPE_SIDE}
    with torch.device("meta"):
        scratch = load_model(alias, id2label=labels, from_scratch=True)
        reference = AutoModelForImageClassification.from_config(config)
    assert type(scratch).__name__ == type(reference).__name__
    assert _architecture(scratch) == _architecture(reference)
    for field in ("model_type", "image_size", "patch_size", "window_size", "depths", "architecture"):
        assert getattr(scratch.config, field, None) == getattr(config, field, None), field
        assert getattr(vision_config_of(scratch.config), field, None) == getattr(vision_config_of(config), field, None)
    if hub_id in HEADLESS:
        assert scratch.config.num_labels == 10 and vision_config_of(scratch.config).image_size == RECIPE_SIDE


@pytest.fixture(scope="module")
def digit_folders(tmp_path_factory) -> tuple[Path, Path]:
    """Real handwritten digits (scikit-learn's scans, 8x8 upscaled to 64 px) as PNG class folders."""
    root = tmp_path_factory.mktemp("digits")
    digits = load_digits()
    rows = []
    for index in range(12):
        pixels = np.clip(digits.images[index] * 16, 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels).resize((64, 64), Image.Resampling.BICUBIC).convert("RGB")
        path = root / "png" / f"{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        rows.append((f"d{index:03d}", path.read_bytes(), int(digits.target[index]) % 3))
    return write_image_folder(root / "train", rows[:8]), write_image_folder(root / "val", rows[8:])


def _checkpoint(hub_id: str, root: Path) -> Path:
    """The fixture's architecture at full size with random weights, saved as a local checkpoint."""
    target = root / hub_id.replace("/", "--")
    if not (target / "config.json").is_file():
        config = AutoConfig.from_pretrained(FIXTURES / hub_id)
        headless = hub_id in HEADLESS or hub_id in TIMM_HEADLESS
        build = AutoModel if headless else AutoModelForImageClassification  # a backbone ships as such
        build.from_config(config).save_pretrained(target)
        processor = AutoImageProcessor.from_pretrained(FIXTURES / hub_id)
        if not hub_id.startswith("timm/"):
            processor.save_pretrained(target)
    return target


def _step_cases() -> list:
    """Every Hub id with SMMix and CutMix. CI runs SMMix on every id that is not SLOW and CutMix on the
    headline DeiT-S (CutMix's step is a subset of SMMix's); ``make test-full`` runs them all."""
    cases = []
    for hub_id in HUB_IDS:
        for mix_method in ("smmix", "cutmix"):
            in_ci = hub_id not in SLOW and (mix_method == "smmix" or hub_id == "facebook/deit-small-patch16-224")
            cases.append(pytest.param(hub_id, mix_method, marks=[] if in_ci else [pytest.mark.full]))
    return cases


@pytest.mark.parametrize(("hub_id", "mix_method"), _step_cases())
def test_one_finetuning_step_at_the_checkpoints_resolution(hub_id, mix_method, digit_folders, tmp_path_factory):
    train_dir, val_dir = digit_folders
    checkpoint = _checkpoint(hub_id, tmp_path_factory.getbasetemp())
    started = time.perf_counter()
    headless = hub_id in HEADLESS or hub_id in TIMM_HEADLESS  # a backbone gets a new head without asking
    metrics = main(
        [
            "--model", str(checkpoint), "--ignore_mismatched_sizes", str(not headless).lower(),
            "--train_dir", str(train_dir), "--validation_dir", str(val_dir),
            "--do_train", "true", "--do_eval", "true", "--mix_method", mix_method, "--max_steps", "1",
            "--per_device_train_batch_size", "2",
            "--per_device_eval_batch_size", "4", "--use_cpu", "true", "--dataloader_num_workers", "0",
            "--auto_augment", "none", "--random_erasing", "0", "--save_strategy", "no", "--report_to", "none",
            "--output_dir", str(tmp_path_factory.mktemp("run")), "--disable_tqdm", "true", "--seed", "0",
        ]
    )  # fmt: skip
    print(f"{hub_id} {mix_method}: {time.perf_counter() - started:.1f} s")
    assert 0.0 <= metrics["eval_top1"] <= 1.0
    assert metrics["eval_accuracy"] == metrics["eval_top1"]
    assert resolve_model_name(dict(ALIASES)[hub_id]) == hub_id


TINY_SHAPE = "image_size=32,patch_size=8,hidden_size=32,num_hidden_layers=1,num_attention_heads=2"
FROM_SCRATCH = {
    "dinov2-small": f"{TINY_SHAPE},mlp_ratio=2",
    "siglip-base": f"{TINY_SHAPE},intermediate_size=64",  # reaches SigLIP's vision_config
    str(FIXTURES / "facebook/dinov2-small"): f"{TINY_SHAPE},mlp_ratio=2",
}


@pytest.mark.parametrize("model", sorted(FROM_SCRATCH), ids=["dinov2-fixture", "dinov2-small", "siglip-base"])
def test_a_headless_checkpoint_trains_from_scratch_with_a_head_for_the_digits(model, tmp_path):
    """``--from_scratch`` on a short name (or the Hub-shaped fixture) of a checkpoint without a classifier: the
    classifier gets a head for the data's 10 labels, shrunk by ``--config_overrides`` (SigLIP's go to its
    ``vision_config``), and trains two SMMix steps on the digits."""
    output_dir = tmp_path / "run"
    metrics = main(
        [
            "--config", "demo", "--model", model, "--from_scratch", "true", "--config_overrides", FROM_SCRATCH[model],
            "--max_steps", "2", "--logging_steps", "1", "--per_device_train_batch_size", "8",
            "--max_eval_samples", "16", "--output_dir", str(output_dir), "--disable_tqdm", "true",
        ]
    )  # fmt: skip
    assert 0.0 <= metrics["eval_top1"] <= 1.0
    saved = AutoConfig.from_pretrained(output_dir)
    assert saved.num_labels == 10 and vision_config_of(saved).hidden_size == 32
    assert saved.architectures[0].endswith("ForImageClassification")
