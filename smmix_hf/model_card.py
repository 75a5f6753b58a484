"""Write a Hugging Face model card (``README.md``) for a model trained with SMMix, without the network."""

from __future__ import annotations

import enum
import importlib.metadata
import math
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

__all__ = ["SMMIX_BIBTEX", "training_recipe", "write_model_card"]

SMMIX_BIBTEX = "\n".join(
    [
        "@inproceedings{chen2023smmix,",
        "  title     = {SMMix: Self-Motivated Image Mixing for Vision Transformers},",
        "  author    = {Chen, Mengzhao and Lin, Mingbao and Lin, Zhihang and Zhang, Yuxin and Chao, Fei and "
        "Ji, Rongrong},",
        "  booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},",
        "  pages     = {17260--17270},",
        "  year      = {2023}",
        "}",
    ]
)

_SMMIX_SUMMARY = (
    "This model was trained with SMMix (Self-Motivated Image Mixing, ICCV 2023, "
    "[arXiv:2212.12977](https://arxiv.org/abs/2212.12977)). For every SMMix batch after the motivation warm-up "
    '(see the recipe below), a no-grad "motivated" forward pass of the model being trained gives the last '
    "layer's attention score of each image token and the "
    "clean predictions. The most attended window of a source image is pasted onto the least attended window "
    "of the target image; the mixed label weighs the source label by the pasted window's share of the "
    "image tokens. Training "
    "combines a mixed-label cross-entropy (Eq. 9), a region-level fine-grained cross-entropy that asks the "
    "tokens of each region to predict the label of the image they came from (Eq. 10-13), and a consistency "
    "KL divergence between the predictions on the mixed image and the motivated clean predictions (Eq. 14)."
)

_VERSIONED_PACKAGES = ("transformers", "torch", "datasets", "accelerate", "smmix_hf")
_BASE_TAGS = ("image-classification", "smmix", "vision")
# The metrics that go into the Hub's ``model-index`` (shown on the model page): metric key -> (type, pretty name).
# ``eval_accuracy`` is top-1 under the name of the HF example; it is used only when ``eval_top1`` is missing.
_INDEXED_METRICS = {
    "eval_top1": ("accuracy", "Top-1 accuracy"),
    "eval_accuracy": ("accuracy", "Top-1 accuracy"),
    "eval_top5": ("top_5_accuracy", "Top-5 accuracy"),
}


def _package_version(name: str) -> str:
    """Installed version of ``name``, or ``"unknown"`` when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _cell(value: object) -> str:
    """Render one value as a markdown table cell; an enum member shows its value (``adamw_torch_fused``)."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, (list, tuple)):
        text = ", ".join(str(item) for item in value)
    else:
        text = str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(rows: Mapping[str, object], header: tuple[str, str]) -> str:
    """A two-column markdown table."""
    lines = [f"| {header[0]} | {header[1]} |", "| --- | --- |"]
    lines += [f"| {_cell(key)} | {_cell(value)} |" for key, value in rows.items()]
    return "\n".join(lines)


def _metrics_section(metrics: Mapping[str, float] | None, dataset_name: str | None) -> str:
    """The body of the "Evaluation" section."""
    if not metrics:
        return "Not evaluated."
    where = f" on `{dataset_name}`" if dataset_name else ""
    formatted = {key: f"{value:.4f}" if isinstance(value, float) else value for key, value in metrics.items()}
    return f"Results{where}:\n\n" + _table(formatted, ("Metric", "Value"))


def _eval_results(
    metrics: Mapping[str, float] | None, dataset_name: str | None, dataset_split: str | None
) -> list[EvalResult] | None:
    """The ``model-index`` entries: top-1 and top-5 accuracy on the evaluation dataset (needs a dataset name)."""
    if not metrics or not dataset_name:
        return None
    results, seen = [], set()
    for key, (metric_type, metric_name) in _INDEXED_METRICS.items():
        if key in metrics and metric_type not in seen:
            seen.add(metric_type)
            results.append(
                EvalResult(
                    task_type="image-classification",
                    task_name="Image Classification",
                    dataset_type=dataset_name,
                    dataset_name=dataset_name,
                    dataset_split=dataset_split,
                    metric_type=metric_type,
                    metric_name=metric_name,
                    metric_value=round(float(metrics[key]), 4),
                )
            )
    return results or None


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _check_inputs(
    output_dir: pathlib.Path,
    model_name: str,
    recipe: object,
    metrics: object,
) -> None:
    """Raise a one-line ``ValueError`` for arguments the card cannot be written from."""
    if not isinstance(model_name, str) or not model_name.strip():
        raise ValueError("model_name must be a non-empty string; pass the name to use as the card's title.")
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"output_dir {output_dir} is a file; pass a directory to write README.md into.")
    if not isinstance(recipe, Mapping):
        raise ValueError(f"recipe must be a mapping of setting name to value, got {type(recipe).__name__}.")
    if metrics is None:
        return
    if not isinstance(metrics, Mapping):
        raise ValueError(f"metrics must be a mapping of metric name to number or None, got {type(metrics).__name__}.")
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"metrics[{key!r}] = {value!r} is not a finite number; pass numeric metric values.")


def write_model_card(
    output_dir: str | os.PathLike,
    *,
    model_name: str,
    base_model: str | None,
    dataset_name: str | None,
    recipe: dict[str, object],
    metrics: dict[str, float] | None = None,
    license: str | None = None,
    language: str | Sequence[str] | None = None,
    tags: str | Sequence[str] | None = None,
    dataset_split: str | None = "validation",
) -> pathlib.Path:
    """Write ``README.md`` describing an SMMix-trained image classifier into ``output_dir``.

    The card's metadata marks it as a transformers image-classification model tagged ``smmix`` (plus ``tags``),
    names the ``base_model`` of a fine-tune, passes ``license`` and ``language`` through, and carries the Hub's
    ``model-index`` with top-1 / top-5 accuracy on ``dataset_name`` (its ``dataset_split``), so the results show
    on the model page. The body explains SMMix, lists the training ``recipe`` and the evaluation ``metrics`` as
    tables, records the installed framework versions and gives the paper's BibTeX. Returns the written path.
    """
    directory = pathlib.Path(output_dir)
    _check_inputs(directory, model_name, recipe, metrics)
    extra_tags = [tag for tag in _as_list(tags) if tag not in _BASE_TAGS]
    card_data = ModelCardData(
        model_name=model_name.strip(),
        library_name="transformers",
        pipeline_tag="image-classification",
        tags=[*_BASE_TAGS, *dict.fromkeys(extra_tags)],
        base_model=base_model or None,
        datasets=[dataset_name] if dataset_name else None,
        metrics=["accuracy"],
        license=license or None,
        language=_as_list(language) or None,
        eval_results=_eval_results(metrics, dataset_name, dataset_split),
    )
    versions = {name: _package_version(name) for name in _VERSIONED_PACKAGES}
    sections = [
        f"# {model_name.strip()}",
        _SMMIX_SUMMARY,
        "## Training recipe\n\n" + _table(recipe, ("Key", "Value")),
        "## Evaluation\n\n" + _metrics_section(metrics, dataset_name),
        "## Framework versions\n\n" + "\n".join(f"- {name}: {version}" for name, version in versions.items()),
        "## Citation\n\n```bibtex\n" + SMMIX_BIBTEX + "\n```",
    ]
    content = f"---\n{card_data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "README.md"
    ModelCard(content).save(path)
    return path


def training_recipe(args: Any, method_recipe: dict[str, object], motivator: Any = None) -> dict[str, object]:
    """The settings that define a run's recipe: the mixing method's own, then the optimisation's."""
    recipe: dict[str, object] = {
        "mix_method": args.mix_method,
        "mixup_switch_prob": args.mixup_switch_prob,
        "mixup_alpha": args.mixup_alpha,
        **method_recipe,
    }
    if motivator is not None:
        recipe["motivator"] = motivator.config.name_or_path or type(motivator).__name__
    recipe.update(
        label_smoothing=args.label_smoothing_factor,
        optimizer=args.optim,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        lr_scheduler=args.lr_scheduler_type,
        warmup_steps=args.warmup_steps,
        epochs=args.num_train_epochs,
        global_batch_size=args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size,
        seed=args.seed,
    )
    return recipe
