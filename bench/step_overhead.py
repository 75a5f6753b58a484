"""What an SMMix training step costs next to CutMix, Mixup and no mixing, measured in one process.

Times one training step (forward + backward; the optimizer step is excluded) for ``mix_method`` none / mixup /
cutmix / smmix, every method with ``mixup_switch_prob: 1`` so each batch uses that method, plus the no-grad forward
alone, in two modes: ``trainer`` (``SMMixTrainer.training_step``) and ``loop`` (a plain PyTorch loop:
``task(images, labels)["loss"].backward()`` on an ``SMMixTask``). Runs are interleaved (A B C D E, A B C D E, ...)
after warm-up and the median of each is reported, so machine noise hits every method and mode alike. The last
lines are ``<mode>: smmix/cutmix = X.XX (floor Y.YY)``, where the floor ``1 + forward / cutmix`` is SMMix's
unavoidable cost (one extra no-grad forward), from the same run.

Peak memory per method: on CUDA, ``torch.cuda.max_memory_allocated`` above the memory held before
the step. On CPU, the peak resident set size above the resident size before the step (the kernel's
high-water mark, reset through ``/proc/self/clear_refs`` before every measured step); the benchmark
re-executes itself with ``MALLOC_MMAP_THRESHOLD_`` set so that large tensors are returned to the
system when freed and the resident size follows the live tensors.

Defaults are DeiT-T's shape (ViT, 224 px, patch 16, width 192, 12 layers, 3 heads), 100 classes,
batch 16, CPU, fp32, SDPA attention::

    python bench/step_overhead.py
    python bench/step_overhead.py --device cuda --bf16 --batch-size 256 \
        --config tests/fixtures/hub/facebook/deit-small-patch16-224   # DeiT-S, 1000 classes

``--models`` times several models in the same run, every step of every model interleaved with the others'
(bench/step_overhead_models.py): the hand-wired ViT, timm DeiT-T and EVA02-tiny read generically, and a DINOv2 at
DeiT-T's shape read generically through the attention interface. Each has its own floor from its own forward; the
last lines are a table of smmix/cutmix, the floor, the difference, and whether it is within floor + 0.03::

    python bench/step_overhead.py --models vit,timm-deit,timm-eva02,dinov2 --methods cutmix,smmix --modes loop

Profile of one SMMix step (torch.profiler, CPU, defaults): nearly all the time is in the two
forwards and the backward's matmuls (``aten::addmm``, ``aten::mm``, ``aten::bmm``,
SDPA); the mixing itself (window sums, argmin / argmax, one gather and one index_put of the
pasted pixels), the last block's attention recomputation and the region pooling take well under
1% of the step. ``compute_loss`` makes no host synchronisation: windows are picked with
``argmax`` on the device and the pasted pixels are moved by index tensors, never ``.item()`` or
``nonzero``; loss terms are accumulated on the device and read only when the Trainer logs.
``--profile`` prints the table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from step_overhead_models import MODELS, BenchModel, build_bench_model

MMAP_THRESHOLD = "65536"
MARGIN = 0.03  # how far above its floor an SMMix step may be


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden-size", type=int, default=192)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--patch-size", type=int, default=None, help="default 16 (14 for timm-eva02)")
    parser.add_argument("--num-labels", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per method (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per method first")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--bf16", action="store_const", const="bf16", dest="dtype", help="same as --dtype bf16")
    parser.add_argument(
        "--config",
        default=None,
        help="a checkpoint folder whose config.json gives the vit model (e.g. "
        "tests/fixtures/hub/facebook/deit-small-patch16-224); overrides the shape flags for it",
    )
    parser.add_argument("--attn-implementation", default="sdpa", help="of the transformers models")
    parser.add_argument("--models", default="vit", help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--methods", default="none,mixup,cutmix,smmix")
    parser.add_argument("--modes", default="trainer,loop", help="trainer (SMMixTrainer), loop (plain SMMixTask)")
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table of one SMMix step")
    return parser.parse_args(argv)


def build_trainers(model, args: argparse.Namespace, methods: list[str], output_dir: str) -> dict:
    from smmix_hf import SMMixConfig, SMMixTrainer

    trainers = {}
    for method in methods:
        config = SMMixConfig(
            output_dir=output_dir,
            mix_method=method,
            mixup_switch_prob=1.0,  # every batch uses the method itself, never Mixup
            motivation_warmup_ratio=0.0,  # every timed step is a full SMMix step
            per_device_train_batch_size=args.batch_size,
            use_cpu=args.device == "cpu",
            report_to="none",
            seed=0,
        )
        trainer = SMMixTrainer(model=model, args=config)
        trainer.current_gradient_accumulation_steps = 1
        trainers[method] = trainer
    return trainers


def build_tasks(model, methods: list[str]) -> dict:
    """One plain ``SMMixTask`` per method, as a loop of one's own would build it."""
    from smmix_hf import MixSettings, SMMixTask

    return {
        method: SMMixTask(model, MixSettings(mix_method=method, mixup_switch_prob=1.0, motivation_warmup_ratio=0.0))
        for method in methods
    }


def synchronize(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def resident_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not found in /proc/self/status")


def measure_peak(step: Callable[[], None], device: str) -> int:
    """Bytes above the pre-step level at the step's peak (see the module docstring for how)."""
    import torch

    if device == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        synchronize(device)
        return torch.cuda.max_memory_allocated() - before
    Path("/proc/self/clear_refs").write_text("5")
    before = resident_bytes("VmRSS")
    step()
    return resident_bytes("VmHWM") - before


def model_steps(
    bench: BenchModel, args: argparse.Namespace, methods: list[str], modes: list[str]
) -> dict[str, Callable[[], None]]:
    """The timed steps of one model, ``<mode>:<method>`` and ``forward``, on a batch of its own."""
    import torch

    model = bench.model
    images = torch.randn(args.batch_size, 3, bench.image_size, bench.image_size, device=args.device)
    labels = torch.randint(0, bench.num_labels, (args.batch_size,), device=args.device)
    inputs = {"pixel_values": images, "labels": labels}
    autocast = torch.autocast(args.device, dtype=torch.bfloat16) if args.dtype == "bf16" else nullcontext()

    with tempfile.TemporaryDirectory() as output_dir:
        trainers = build_trainers(model, args, methods, output_dir) if "trainer" in modes else {}
    tasks = build_tasks(model, methods) if "loop" in modes else {}

    def trainer_step(method: str) -> Callable[[], None]:
        def step() -> None:
            with autocast:
                trainers[method].training_step(model, inputs)
            model.zero_grad(set_to_none=True)

        return step

    def loop_step(method: str) -> Callable[[], None]:
        def step() -> None:
            with autocast:
                loss = tasks[method](images, labels)["loss"]
            loss.backward()
            model.zero_grad(set_to_none=True)

        return step

    def forward_only() -> None:
        model.eval()
        with torch.no_grad(), autocast:
            model(pixel_values=images)
        model.train()

    model.train()
    steps: dict[str, Callable[[], None]] = {}
    for mode in modes:
        build_step = trainer_step if mode == "trainer" else loop_step
        steps.update({f"{mode}:{method}": build_step(method) for method in methods})
    steps["forward"] = forward_only
    return steps


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.device == "cpu" and os.environ.get("MALLOC_MMAP_THRESHOLD_") != MMAP_THRESHOLD:
        os.environ["MALLOC_MMAP_THRESHOLD_"] = MMAP_THRESHOLD
        os.execv(sys.executable, [sys.executable, *sys.argv])

    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    modes = [name.strip() for name in args.modes.split(",") if name.strip()]
    names = list(dict.fromkeys(name.strip() for name in args.models.split(",") if name.strip()))
    if not modes or not set(modes) <= {"trainer", "loop"}:
        raise SystemExit(f"--modes takes trainer and/or loop; got {args.modes!r}")
    if not names or not set(names) <= set(MODELS):
        raise SystemExit(f"--models takes {', '.join(MODELS)}; got {args.models!r}")
    load_before = os.getloadavg()
    benches = [build_bench_model(name, args) for name in names]
    steps = {bench.name: model_steps(bench, args, methods, modes) for bench in benches}
    for model_steps_of in steps.values():
        for step in model_steps_of.values():
            for _ in range(args.warmup):
                step()
    synchronize(args.device)

    # Every step of every model once per repeat, so that repeat i of each is measured under the same load.
    timings = {model: {name: [] for name in model_steps_of} for model, model_steps_of in steps.items()}
    for _ in range(args.repeats):
        for model, model_steps_of in steps.items():
            for name, step in model_steps_of.items():
                synchronize(args.device)
                start = time.perf_counter()
                step()
                synchronize(args.device)
                timings[model][name].append(time.perf_counter() - start)
    peaks = {
        model: {name: measure_peak(step, args.device) for name, step in model_steps_of.items()}
        for model, model_steps_of in steps.items()
    }
    if args.profile:
        for model, model_steps_of in steps.items():
            profile_step(model, model_steps_of, args.device)

    for bench in benches:
        report(args, bench, timings[bench.name], peaks[bench.name])
    if len(benches) > 1:
        summarize(timings)
    load = ", ".join(f"{before:.1f} -> {after:.1f}" for before, after in zip(load_before, os.getloadavg(), strict=True))
    print(f"load average (1, 5, 15 min) before -> after the run: {load}; {os.cpu_count()} CPUs")


def profile_step(model: str, steps: dict[str, Callable[[], None]], device: str) -> None:
    """A torch.profiler table of the first SMMix step of ``steps``."""
    from torch.profiler import ProfilerActivity, profile

    profiled = next((name for name in steps if name.endswith(":smmix")), None)
    if profiled is None:
        return
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with profile(activities=activities) as profiler:
        steps[profiled]()
    print(f"{model} {profiled}:")
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def report(args: argparse.Namespace, bench: BenchModel, timings: dict[str, list[float]], peaks: dict[str, int]) -> None:
    medians = {name: statistics.median(values) for name, values in timings.items()}
    memory_kind = "CUDA max allocated" if args.device == "cuda" else "CPU peak RSS delta"
    print(
        f"model: {bench.description} | batch {args.batch_size} | {args.device} {args.dtype} | median of {args.repeats}"
    )
    print(f"{'step':<16}{'median s':>10}{'images/s':>10}{'vs cutmix':>11}{'peak MiB':>10}   ({memory_kind})")
    for name, seconds in medians.items():
        mode = name.split(":")[0]
        reference = medians.get(f"{mode}:cutmix")
        ratio = f"{seconds / reference:.2f}" if reference and ":" in name else "-"
        images_per_second = args.batch_size / seconds
        print(f"{name:<16}{seconds:>10.3f}{images_per_second:>10.1f}{ratio:>11}{peaks[name] / 2**20:>10.1f}")
    modes = list(dict.fromkeys(name.split(":")[0] for name in medians if ":" in name))
    for mode in modes:
        smmix, cutmix, mixup = (medians.get(f"{mode}:{method}") for method in ("smmix", "cutmix", "mixup"))
        if smmix and cutmix and mixup:
            half = (smmix + mixup) / (cutmix + mixup)
            memory = peaks[f"{mode}:smmix"] / max(peaks[f"{mode}:cutmix"], 1)
            print(f"{mode}: with mixup_switch_prob 0.5, smmix/cutmix = {half:.2f}; peak memory ratio {memory:.2f}")
    for mode in modes:
        smmix, cutmix = timings.get(f"{mode}:smmix"), timings.get(f"{mode}:cutmix")
        if smmix and cutmix and len(smmix) >= 4:  # the runs are interleaved, so repeat i of each is a pair
            quartiles = statistics.quantiles([a / b for a, b in zip(smmix, cutmix, strict=True)], n=4)
            print(f"{mode}: smmix/cutmix repeat by repeat, interquartile range {quartiles[0]:.2f}-{quartiles[2]:.2f}")
    for mode in modes:
        smmix, cutmix = medians.get(f"{mode}:smmix"), medians.get(f"{mode}:cutmix")
        if smmix and cutmix and "forward" in medians:
            floor = 1 + medians["forward"] / cutmix
            print(f"{mode}: smmix/cutmix = {smmix / cutmix:.2f} (floor {floor:.2f})")


def summarize(timings: dict[str, dict[str, list[float]]]) -> None:
    """Per model and mode: smmix/cutmix, its floor ``1 + forward/cutmix`` (medians), the difference, the same
    difference repeat by repeat (median and interquartile range of ``(smmix - cutmix - forward) / cutmix``), and
    whether the step is within floor + MARGIN."""
    print(f"\nsmmix/cutmix against its floor 1 + forward/cutmix, same run; within: <= floor + {MARGIN:.2f}")
    print(f"{'model':<12}{'mode':<9}{'ratio':>7}{'floor':>7}{'above':>8}   {'paired above [IQR]':<28}within")
    for model, model_timings in timings.items():
        for mode in dict.fromkeys(name.split(":")[0] for name in model_timings if ":" in name):
            smmix, cutmix = model_timings.get(f"{mode}:smmix"), model_timings.get(f"{mode}:cutmix")
            forward = model_timings.get("forward")
            if not (smmix and cutmix and forward):
                continue
            ratio = statistics.median(smmix) / statistics.median(cutmix)
            floor = 1 + statistics.median(forward) / statistics.median(cutmix)
            above = round(ratio, 2) - round(floor, 2)
            paired = [(s - c - f) / c for s, c, f in zip(smmix, cutmix, forward, strict=True)]
            spread = statistics.quantiles(paired, n=4) if len(paired) >= 4 else [min(paired), 0.0, max(paired)]
            paired_text = f"{statistics.median(paired):+.3f} [{spread[0]:+.3f}, {spread[2]:+.3f}]"
            within = "yes" if above <= MARGIN + 1e-9 else "no"
            print(f"{model:<12}{mode:<9}{ratio:>7.2f}{floor:>7.2f}{above:>+8.2f}   {paired_text:<28}{within}")


if __name__ == "__main__":
    main()
