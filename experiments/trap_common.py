"""Shared pieces of the local-object experiments: the small canvas regime, the window probe, the warm-up.

The regime is scaled down to fit a 2-core machine shared with other work (one thread per run):

* data: the bundled digits, 10-16 px each (``scale`` 0.3125-0.5 of the side), at a random place on a
  32 px noisy canvas (``canvas_digits.py``); 1,437 training digits × ``renderings`` (default 2), the 360
  validation digits rendered once;
* model: a 4-layer ViT, width 96, 4 heads, MLP 192, patch 4, so the token grid is 8 × 8 (SMMix windows
  of side 2-5 tokens);
* recipe: the demo's (AdamW, lr 2e-3, weight decay 0.05, cosine, 50 warm-up steps, batch 64,
  label smoothing 0.1, Mixup at p = 0.5 alternating with CutMix / SMMix, random resized crop 0.8-1).

:class:`WindowProbeCallback` runs, at each epoch end, the model's motivated forward (eval mode, no
grad, Eq. 6 scores through :class:`smmix_hf.backbones.probe.SMMixProbe`) on the validation canvases, whose
digit boxes are known, and records the clean top-1 and the window hit rates. :class:`WarmupCallback`
is the fix under test: random windows and / or no L_con until a given epoch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import datasets
import torch
from canvas_digits import load_canvas_digits, token_box_mask
from ink_oracle import InkOracleTrainer
from transformers import TrainerCallback, ViTConfig, ViTForImageClassification, ViTImageProcessor, set_seed

from smmix_hf import SMMixConfig, SMMixTrainer
from smmix_hf.backbones.probe import SMMixProbe
from smmix_hf.data import (
    build_eval_transform,
    build_train_transform,
    collate_image_batch,
    make_batch_transform,
    settings_from_image_processor,
)
from smmix_hf.draws import region_size_range
from smmix_hf.mixing import select_windows

CHANCE_LOSS = math.log(10)


@dataclasses.dataclass(frozen=True)
class Regime:
    """One local-object setting: canvas, digit sizes, ViT shape, training renderings, crop, window sampling.

    ``sides`` are the SMMix window sides the hit rates average over, each equally likely: the official
    sampling draws them uniformly from ``⌊0.25·g⌋ … ⌊0.75·g⌋``; the continuous one floors ``δ·g`` for
    δ ~ U(0.25, 0.75), which for the 8 × 8 grid makes 2, 3, 4, 5 equally likely.
    """

    name: str
    canvas: int
    patch: int
    scale: tuple[float, float]
    noise: float
    width: int
    renderings: int
    crop_scale_min: float
    region_sampling: str

    @property
    def grid(self) -> int:
        return self.canvas // self.patch

    @property
    def sides(self) -> tuple[int, ...]:
        if self.region_sampling == "continuous":
            return tuple(sorted({max(1, math.floor(share * self.grid)) for share in (0.25, 0.375, 0.5, 0.625)}))
        return tuple(side for side, _ in region_size_range((self.grid, self.grid), (0.25, 0.75)))


REGIMES = {
    # 10-16 px digits on a 32 px canvas, ViT width 96 / patch 4 (8 × 8 tokens): fits 1 CPU thread a run.
    "canvas32": Regime("canvas32", 32, 4, (0.3125, 0.5), 0.25, 96, 2, 0.8, "continuous"),
    # 16-24 px digits on a 48 px canvas, the demo's ViT (width 128, patch 8: 6 × 6 tokens), 3 renderings.
    "canvas48": Regime("canvas48", 48, 8, (1 / 3, 1 / 2), 0.1, 128, 3, 0.8, "official"),
}
CANVAS32 = REGIMES["canvas32"]

# The demo's training recipe, shared by every run here (learning rate, epochs and seed are per run).
RECIPE = dict(
    per_device_train_batch_size=64,
    per_device_eval_batch_size=256,
    weight_decay=0.05,
    lr_scheduler_type="cosine",
    warmup_steps=50,
    eval_strategy="no",
    save_strategy="no",
    logging_strategy="epoch",
    report_to="none",
    disable_tqdm=True,
    dataloader_num_workers=0,
    use_cpu=True,
)

# Named SMMix variants: SMMixConfig overrides (and the warm-up of the fix, if any).
VARIANTS: dict[str, dict[str, Any]] = {
    "none": {"mix_method": "none"},
    "cutmix": {"mix_method": "cutmix"},
    "smmix": {"mix_method": "smmix"},
    "maxmin_only": {"mix_method": "smmix", "fine_loss_weight": 0.0, "consistency_loss_weight": 0.0},
    "maxmin_con": {"mix_method": "smmix", "fine_loss_weight": 0.0},
    "maxmin_fine": {"mix_method": "smmix", "consistency_loss_weight": 0.0},
    "random_windows": {"mix_method": "smmix", "max_min_regions": False},
    # The fix: random windows and no L_con for the first quarter of the epochs (motivation_warmup_epochs).
    "smmix_warmup25": {
        "mix_method": "smmix",
        "motivation_warmup_share": 0.25,
        "motivation_warmup_mixing": "random_windows",
    },
    # The fix, CutMix form: the first quarter of the epochs are CutMix batches (motivation_warmup_mixing="cutmix").
    "smmix_warmup25_cutmix": {
        "mix_method": "smmix",
        "motivation_warmup_share": 0.25,
        "motivation_warmup_mixing": "cutmix",
    },
    # The fix, two-part form: CutMix for the first half of the warm-up, random windows for the second.
    "smmix_warmup25_cutmix_random": {
        "mix_method": "smmix",
        "motivation_warmup_share": 0.25,
        "motivation_warmup_mixing": "cutmix_then_random_windows",
    },
    # Consistency target (the paper's λ-mix of probabilities instead of the official λ-mix of logits).
    "smmix_probs": {"mix_method": "smmix", "consistency_target": "probs"},
    # Region head: a separate linear head for L_fine's region logits (the official code) instead of the classifier.
    "smmix_region_head": {"mix_method": "smmix", "region_head": "separate"},
    # δ strategies (Tab. 8): the paper's continuous δ ~ U(0.25, 0.75), δ ~ U(0, 1), δ fixed at 0.5.
    "delta_continuous": {"mix_method": "smmix", "region_sampling": "continuous"},
    "delta_u01": {"mix_method": "smmix", "region_scale_min": 0.0, "region_scale_max": 1.0},
    "delta_half": {"mix_method": "smmix", "region_scale_min": 0.5, "region_scale_max": 0.5},
    # Oracle windows: SMMix scored by the digit's ink (``ink_oracle.py``) instead of the model's attention.
    "smmix_ink_oracle": {"mix_method": "smmix", "trainer": "ink_oracle"},
}


def load_splits(
    renderings: int | None = None, data_seed: int = 0, regime: Regime = CANVAS32
) -> tuple[datasets.DatasetDict, ViTImageProcessor, dict]:
    """Canvas splits with the package's transforms, and the raw validation tensors with their boxes."""
    canvas = regime.canvas
    splits = load_canvas_digits(
        canvas_size=canvas,
        scale=regime.scale,
        noise=regime.noise,
        seed=data_seed,
        renderings=regime.renderings if renderings is None else renderings,
    )
    processor = ViTImageProcessor(size={"height": canvas, "width": canvas}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    settings = settings_from_image_processor(
        processor, horizontal_flip=False, crop_pct=1.0, random_resized_crop_scale=(regime.crop_scale_min, 1.0)
    )
    eval_transform = build_eval_transform(settings)
    validation = splits["validation"]
    held_out = {
        "pixel_values": torch.stack([eval_transform(image) for image in validation["image"]]),
        "labels": torch.tensor(validation["label"]),
        "boxes": torch.tensor(validation["box"]),
    }
    splits["train"].set_transform(make_batch_transform(build_train_transform(settings)))
    splits["validation"].set_transform(make_batch_transform(eval_transform))
    return splits, processor, held_out


def version_kwargs() -> dict[str, Any]:
    """The Mixup switch at p = 0.5 and δ ~ U(0.25, 0.75) with side ⌊δ·g⌋ (the canvas32 runs), in the names of the
    checked-out package.

    Older runs used ``mixup_prob`` and the side ⌊δ·g⌋; later ones use
    ``mixup_switch_prob`` and ``region_sampling`` defaults to "official", so "continuous" keeps runs comparable.
    """
    fields = {field.name for field in dataclasses.fields(SMMixConfig)}
    if "mixup_switch_prob" in fields:
        return {"mixup_switch_prob": 0.5, "region_sampling": "continuous"}
    return {"mixup_prob": 0.5}


def code_version() -> str:
    """The package's git commit, with ``+dirty`` when smmix_hf/ has uncommitted changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "smmix_hf"], cwd=root, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return head.strip() + ("+dirty" if dirty.stdout.strip() else "")


def build_model(width: int = 96, layers: int = 4, regime: Regime = CANVAS32) -> ViTForImageClassification:
    config = ViTConfig(
        image_size=regime.canvas,
        patch_size=regime.patch,
        hidden_size=width,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=2 * width,
        num_labels=10,
        id2label={index: str(index) for index in range(10)},
        label2id={str(index): index for index in range(10)},
    )
    return ViTForImageClassification(config)


@torch.no_grad()
def window_hit_rates(
    model: torch.nn.Module, held_out: dict[str, torch.Tensor], regime: Regime = CANVAS32
) -> dict[str, float]:
    """Clean top-1 and how well the model's max / min windows find / avoid the digit, against random windows.

    Per image and window side s in ``regime.sides`` (equally likely):

    * ``src_hit``: the max-score window (the one SMMix cuts from a source) overlaps the digit's tokens;
    * ``src_cover``: share of the digit's tokens inside that window;
    * ``tgt_avoid``: the min-score window (the one SMMix pastes over in a target) misses the digit;
    * ``tgt_occlude``: share of the digit's tokens under that window.

    ``*_random`` is the exact expectation of the same quantity over uniformly placed windows.
    """
    images, labels = held_out["pixel_values"], held_out["labels"]
    probe, was_training = SMMixProbe(model), model.training
    device = next(model.parameters()).device
    model.eval()
    try:
        with probe.reading_attention((regime.canvas, regime.canvas)):
            logits = model(pixel_values=images.to(device)).logits.float().cpu()
        scores = probe.scores.float().cpu()
    finally:
        probe.remove()
        model.train(was_training)
    result = score_hit_rates(scores, held_out["boxes"], regime)
    result["clean_top1"] = float((logits.argmax(-1) == labels).float().mean())
    result["clean_loss"] = float(torch.nn.functional.cross_entropy(logits, labels))
    return result


def score_hit_rates(scores: torch.Tensor, boxes: torch.Tensor, regime: Regime = CANVAS32) -> dict[str, float]:
    """The window hit rates of :func:`window_hit_rates` for given ``[B, g, g]`` scores and digit boxes."""
    canvas, grid = regime.canvas, regime.grid
    digit = token_box_mask(boxes, canvas, grid).float()  # [B, g, g]
    digit_tokens = digit.sum(dim=(1, 2))
    rates: dict[str, list[float]] = {
        key: []
        for key in (
            "src_hit",
            "src_hit_random",
            "src_cover",
            "src_cover_random",
            "tgt_avoid",
            "tgt_avoid_random",
            "tgt_occlude",
            "tgt_occlude_random",
        )
    }
    rows = torch.arange(scores.shape[0])
    for side in regime.sides:
        inside = digit.unfold(1, side, 1).unfold(2, side, 1).sum(dim=(-1, -2))  # digit tokens per window position
        flat = inside.flatten(1)
        positions = flat.shape[1]
        best = select_windows(scores, (side, side), largest=True)
        worst = select_windows(scores, (side, side), largest=False)
        at_best = flat[rows, best[:, 0] * inside.shape[-1] + best[:, 1]]
        at_worst = flat[rows, worst[:, 0] * inside.shape[-1] + worst[:, 1]]
        rates["src_hit"].append(float((at_best > 0).float().mean()))
        rates["src_hit_random"].append(float(((flat > 0).float().sum(1) / positions).mean()))
        rates["src_cover"].append(float((at_best / digit_tokens).mean()))
        rates["src_cover_random"].append(float((flat.mean(1) / digit_tokens).mean()))
        rates["tgt_avoid"].append(float((at_worst == 0).float().mean()))
        rates["tgt_avoid_random"].append(float(((flat == 0).float().sum(1) / positions).mean()))
        rates["tgt_occlude"].append(float((at_worst / digit_tokens).mean()))
        rates["tgt_occlude_random"].append(rates["src_cover_random"][-1])
    return {key: statistics.mean(values) for key, values in rates.items()}


class WindowProbeCallback(TrainerCallback):
    """At every epoch's log (``logging_strategy="epoch"``): the epoch's mean loss terms, then clean top-1
    and window hit rates on the held-out canvases, measured on the model as it stands at that epoch end."""

    def __init__(self, held_out: dict[str, torch.Tensor], regime: Regime = CANVAS32) -> None:
        self.held_out, self.regime = held_out, regime
        self.history: list[dict[str, float]] = []

    def on_log(
        self,
        args: Any,
        state: Any,
        control: Any,
        logs: dict[str, float] | None = None,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        if not logs or "loss" not in logs:
            return
        entry: dict[str, float] = {"epoch": round(state.epoch)}
        entry.update({key: value for key, value in logs.items() if key.startswith(("loss", "mix_share"))})
        entry.update(window_hit_rates(model, self.held_out, self.regime))
        entry["max_min_regions"] = bool(args.max_min_regions)
        entry["consistency_loss_weight"] = float(args.consistency_loss_weight)
        self.history.append(entry)


class WarmupCallback(TrainerCallback):
    """The fix under test: until epoch ``epochs``, SMMix batches use random windows and / or no L_con.

    ``random_windows`` sets ``max_min_regions=False``; ``no_consistency`` sets
    ``consistency_loss_weight=0``; the configured values come back at the first step of epoch ``epochs``.
    The knobs are set on ``trainer.args`` (which older trainers read at every step)
    and, where the trainer holds its method objects with frozen ``MixSettings`` (``trainer.method`` and
    its ``parts``), on every method's ``settings`` as well. Set :attr:`trainer`
    before training.
    """

    def __init__(self, epochs: float, random_windows: bool, no_consistency: bool, fraction: bool = False) -> None:
        self.epochs, self.random_windows, self.no_consistency = epochs, random_windows, no_consistency
        self.fraction = fraction  # epochs is a fraction of num_train_epochs
        self.trainer: Any = None
        self._saved: tuple[bool, float] | None = None

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._saved is None:
            self._saved = (args.max_min_regions, args.consistency_loss_weight)
        until = self.epochs * args.num_train_epochs if self.fraction else self.epochs
        warming = state.epoch < until
        max_min, weight = self._saved
        args.max_min_regions = max_min and not (warming and self.random_windows)
        args.consistency_loss_weight = 0.0 if warming and self.no_consistency else weight
        method = getattr(self.trainer, "method", None)
        if method is None:
            return
        for part in (method, *getattr(method, "parts", ())):
            if part is not None and hasattr(part, "settings"):
                part.settings = dataclasses.replace(
                    part.settings,
                    max_min_regions=args.max_min_regions,
                    consistency_loss_weight=args.consistency_loss_weight,
                )


def parse_warmup(spec: str) -> WarmupCallback | None:
    """``none``, or ``<knobs>:<epochs>`` with knobs ``rand``, ``nocon`` or ``rand+nocon`` (e.g. ``rand+nocon:5``);
    ``<epochs>`` may be a share of the training, e.g. ``rand+nocon:25%``."""
    if spec == "none":
        return None
    knobs, _, epochs = spec.partition(":")
    parts = set(knobs.split("+"))
    if not parts <= {"rand", "nocon"} or not epochs:
        raise ValueError(f"warm-up spec must be none or rand|nocon|rand+nocon:<epochs>; got {spec!r}.")
    fraction = epochs.endswith("%")
    length = float(epochs.rstrip("%")) / 100 if fraction else float(epochs)
    return WarmupCallback(length, random_windows="rand" in parts, no_consistency="nocon" in parts, fraction=fraction)


def train_run(
    variant: str,
    seed: int,
    epochs: int,
    splits: datasets.DatasetDict,
    processor: ViTImageProcessor,
    held_out: dict[str, torch.Tensor],
    warmup: str = "none",
    width: int | None = None,
    learning_rate: float = 2e-3,
    probe_every_epoch: bool = True,
    output_dir: str = "/tmp/smmix_trap_runs",
    init: str = "scratch",
    regime: Regime = CANVAS32,
    device: str = "cpu",
) -> dict[str, Any]:
    """Train one run (from scratch, or from the checkpoint directory ``init``); the result holds the
    per-epoch history and the final metrics."""
    set_seed(seed)
    width = regime.width if width is None else width
    model = (
        build_model(width=width, regime=regime)
        if init == "scratch"
        else ViTForImageClassification.from_pretrained(init)
    )
    overrides = dict(VARIANTS[variant])
    trainer_class = InkOracleTrainer if overrides.pop("trainer", None) == "ink_oracle" else SMMixTrainer
    share = overrides.pop("motivation_warmup_share", None)
    if share is not None:
        overrides["motivation_warmup_epochs"] = share * epochs
    else:
        overrides["motivation_warmup_ratio"] = 0.0  # the paper's schedule unless the variant asks for a warm-up
    sampling = version_kwargs() if regime is CANVAS32 else {"mixup_switch_prob": 0.5}
    recipe = dict(RECIPE, use_cpu=device == "cpu")
    args = SMMixConfig(
        output_dir=f"{output_dir}/{regime.name}-{variant}-{warmup}-e{epochs}-seed{seed}",
        **overrides,
        **sampling,
        num_train_epochs=epochs,
        learning_rate=learning_rate,
        seed=seed,
        **recipe,
    )
    probe = WindowProbeCallback(held_out, regime)
    callbacks: list[TrainerCallback] = [probe] if probe_every_epoch else []
    fix = parse_warmup(warmup)
    if fix is not None:
        callbacks.insert(0, fix)
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=splits["train"],
        data_collator=collate_image_batch,
        processing_class=processor,
        callbacks=callbacks,
    )
    if fix is not None:
        fix.trainer = trainer
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    final = window_hit_rates(model, held_out, regime)
    result = {
        "variant": variant,
        "warmup": warmup,
        "seed": seed,
        "epochs": epochs,
        "width": width,
        "learning_rate": learning_rate,
        "train_images": len(splits["train"]),
        "init": init if init == "scratch" else Path(init).name,
        "code": code_version(),
        "region_sampling": getattr(args, "region_sampling", "continuous"),
        "train_seconds": round(seconds, 1),
        "threads": torch.get_num_threads(),
        "clean_top1": final["clean_top1"],
        "final": final,
        "history": probe.history,
        "takeoff_epoch": takeoff_epoch(probe.history),
        "model": model,
    }
    if regime is not CANVAS32:
        result.update(regime=regime.name, device=torch.cuda.get_device_name() if device == "cuda" else device)
    return result


def takeoff_epoch(history: list[dict[str, float]], threshold: float = 0.2) -> int | None:
    """First epoch whose held-out clean top-1 reaches ``threshold`` (chance is 0.1); None if never."""
    for entry in history:
        if entry["clean_top1"] >= threshold:
            return int(entry["epoch"])
    return None


def loss_takeoff_epoch(history: list[dict[str, float]], margin: float = 0.03) -> int | None:
    """First epoch whose mean training L_cls is ``margin`` below chance (ln 10); None if never."""
    for entry in history:
        if entry.get("loss_cls", CHANCE_LOSS) <= CHANCE_LOSS - margin:
            return int(entry["epoch"])
    return None


def save_result(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {key: value for key, value in result.items() if key != "model"}
    path.write_text(json.dumps(data, indent=1))


def mean_std(values: list[float], scale: float = 100.0, digits: int = 1) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{scale * values[0]:.{digits}f}"
    return f"{scale * statistics.mean(values):.{digits}f} ± {scale * statistics.stdev(values):.{digits}f}"


def setup_threads() -> None:
    torch.set_num_threads(1)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()


RESULTS = Path(__file__).resolve().parent / "results"
KEY_FIELDS = ("variant", "warmup", "seed", "epochs", "width", "learning_rate", "train_images", "init", "regime")
DEFAULTS = {"init": "scratch", "regime": "canvas32"}  # fields that runs made before they existed lack


def run_name(variant: str, warmup: str, epochs: int, seed: int) -> str:
    warmup = warmup.replace(":", "-").replace("+", "_").replace("%", "pct")
    return f"{variant}__{warmup}__e{epochs}__s{seed}"


def _find_existing(key: dict[str, Any]) -> dict[str, Any] | None:
    """A finished run with the same settings in any experiment's results (runs are deterministic per seed)."""
    name = run_name(key["variant"], key["warmup"], key["epochs"], key["seed"]) + ".json"
    for path in sorted(RESULTS.glob(f"*/{name}")):
        data = json.loads(path.read_text())
        if all(data.get(field, DEFAULTS.get(field)) == key.get(field, DEFAULTS.get(field)) for field in KEY_FIELDS):
            data.setdefault("reused_from", str(path.relative_to(RESULTS)))
            return data
    return None


def run_arms(
    experiment: str,
    arms: list[tuple[str, str]],
    seeds: list[int],
    epochs_list: list[int],
    renderings: int = 2,
    width: int = 96,
    learning_rate: float = 2e-3,
    init: str = "scratch",
) -> list[dict[str, Any]]:
    """Train every (variant, warm-up) arm for every seed and epoch budget, seeds outermost; one JSON per run.

    A run already stored under ``results/<any experiment>/`` with the same settings is copied
    instead of trained again. Returns every run of this experiment's directory.
    """
    setup_threads()
    splits, processor, held_out = load_splits(renderings=renderings)
    runs_dir = RESULTS / experiment
    runs_dir.mkdir(parents=True, exist_ok=True)
    for epochs in epochs_list:
        for seed in seeds:
            for variant, warmup in arms:
                path = result_path(experiment, variant, warmup, epochs, seed)
                if path.exists():
                    continue
                key = {
                    "variant": variant,
                    "warmup": warmup,
                    "seed": seed,
                    "epochs": epochs,
                    "width": width,
                    "learning_rate": learning_rate,
                    "train_images": len(splits["train"]),
                    "init": init if init == "scratch" else Path(init).name,
                }
                existing = _find_existing(key)
                if existing is not None:
                    save_result(existing, path)
                    print(f"reused {path.name} from {existing['reused_from']}", flush=True)
                    continue
                train_and_store(
                    path, variant, seed, epochs, splits, processor, held_out, warmup=warmup, width=width,
                    learning_rate=learning_rate, init=init,
                )  # fmt: skip
    return load_runs(experiment)


def result_path(experiment: str, variant: str, warmup: str, epochs: int, seed: int) -> Path:
    return RESULTS / experiment / (run_name(variant, warmup, epochs, seed) + ".json")


def train_and_store(path: Path, variant: str, seed: int, epochs: int, *data: Any, **settings: Any) -> None:
    """:func:`train_run` (``data``: splits, processor, held-out set); its JSON goes to ``path``, a line to stdout."""
    result = train_run(variant, seed, epochs, *data, **settings)
    save_result(result, path)
    print(
        f"done {path.parent.name}/{path.name}: top-1 {result['clean_top1']:.3f}, "
        f"take-off epoch {result['takeoff_epoch']}, {result['train_seconds']:.0f} s",
        flush=True,
    )


def load_runs(experiment: str) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted((RESULTS / experiment).glob("*__e*__s*.json"))]


def arm_label(variant: str, warmup: str) -> str:
    return variant if warmup == "none" else f"{variant} + warm-up {warmup}"


def select(runs: list[dict[str, Any]], variant: str, warmup: str, epochs: int | None = None) -> list[dict[str, Any]]:
    return [
        run
        for run in runs
        if run["variant"] == variant and run["warmup"] == warmup and (epochs is None or run["epochs"] == epochs)
    ]


def epoch_curve(runs: list[dict[str, Any]], key: str) -> tuple[list[int], list[float], list[float]]:
    """Epochs, mean and std over ``runs`` of ``key`` in their histories (epochs all runs share)."""
    if not runs:
        return [], [], []
    length = min(len(run["history"]) for run in runs)
    epochs = [int(entry["epoch"]) for entry in runs[0]["history"][:length]]
    means, stds = [], []
    for index in range(length):
        values = [float(run["history"][index].get(key, float("nan"))) for run in runs]
        means.append(statistics.mean(values))
        stds.append(statistics.stdev(values) if len(values) > 1 else 0.0)
    return epochs, means, stds


def last_fraction_change(run: dict[str, Any], fraction: float = 0.2) -> float:
    """Clean top-1 at the end minus at the start of the last ``fraction`` of epochs (section 1's test)."""
    history = run["history"]
    start = max(0, math.floor(len(history) * (1 - fraction)) - 1)  # the last epoch at or before 80%
    return float(history[-1]["clean_top1"]) - float(history[start]["clean_top1"])


PRETRAINED = RESULTS.parents[1] / "outputs" / "experiments" / "digits_fullframe_vit"


def pretrain(path: Path, epochs: int = 15) -> None:
    """The warm start: the canvas ViT trained without mixing on the full-frame digits (32 px, seed 0)."""
    from smmix_hf.data import load_digits_dataset

    setup_threads()
    splits = load_digits_dataset(image_size=32, seed=0)
    processor = ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    settings = settings_from_image_processor(
        processor, horizontal_flip=False, crop_pct=1.0, random_resized_crop_scale=(0.6, 1.0)
    )
    splits["train"].set_transform(make_batch_transform(build_train_transform(settings)))
    splits["validation"].set_transform(make_batch_transform(build_eval_transform(settings)))
    set_seed(0)
    args = SMMixConfig(
        output_dir=str(path) + "-trainer",
        mix_method="none",
        num_train_epochs=epochs,
        learning_rate=2e-3,
        seed=0,
        **RECIPE,
    )
    trainer = SMMixTrainer(
        model=build_model(),
        args=args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        data_collator=collate_image_batch,
        processing_class=processor,
    )
    trainer.train()
    metrics = trainer.evaluate()
    print(f"full-frame digits pre-training: held-out top-1 {metrics['eval_top1']:.3f}", flush=True)
    trainer.save_model(str(path))
