#!/usr/bin/env python
"""Break SMMix's wiring on purpose, one bug at a time, and show which reference test catches each.

Each mutation edits a temporary copy of the ``smmix_hf`` package (the checkout is never touched), then
runs the reference tests (``tests/test_reference_step.py``, ``tests/test_reference_behaviour.py``,
``tests/test_reference_transmix.py``) against that copy. The table lists every mutation and the first test that
failed; a mutation that no test catches makes the script exit with status 1.

    python scripts/mutation_check.py            # every mutation
    python scripts/mutation_check.py --list     # their names
    python scripts/mutation_check.py kl_direction_reversed
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Fast, broad tests first: pytest stops at the first failure (-x).
REFERENCE_TESTS = tuple(
    str(ROOT / test)
    for test in (
        "tests/test_reference_step.py::test_smmix_step_equals_the_reference[vit]",
        "tests/test_reference_behaviour.py::test_motivated_forward_is_eval_mixed_forward_is_train",
        "tests/test_reference_transmix.py::test_transmix_cutmix_step_equals_the_reference[vit]",
        "tests/test_reference_step.py",
        "tests/test_reference_behaviour.py",
        "tests/test_reference_transmix.py",
        "tests/test_backbones_timm_vit_swin.py",
    )
)


# Runs pytest with the mutated copy first on sys.path, and checks that it is the copy that gets imported.
IMPORT_THE_COPY_THEN_TEST = """
import sys
sys.path.insert(0, sys.argv[1])
sys.meta_path[:] = [finder for finder in sys.meta_path if not type(finder).__module__.startswith("__editable__")]
import pytest, smmix_hf
assert smmix_hf.__file__.startswith(sys.argv[1]), smmix_hf.__file__
sys.exit(pytest.main(sys.argv[2:]))
"""


@dataclass(frozen=True)
class Mutation:
    name: str
    description: str
    path: str  # inside smmix_hf/
    edits: tuple[tuple[str, str], ...]  # (exact text, replacement); each text must occur exactly once


MUTATIONS = (
    Mutation(
        "region_labels_swapped",
        "L_fine: inside → target label, outside → source label",
        "methods/smmix.py",
        (("probe.region_logits, labels", "probe.region_logits.flip(0), labels"),),
    ),
    Mutation(
        "lambda_flipped_in_cls",
        "L_cls: 1-λ on the source label",
        "methods/smmix.py",
        (
            (
                "mixed_soft_target(labels, source_index, fraction,",
                "mixed_soft_target(labels, source_index, 1 - fraction,",
            ),
        ),
    ),
    Mutation(
        "lambda_flipped_in_con",
        "L_con: 1-λ on the source's clean logits",
        "methods/smmix.py",
        (
            (
                "consistency_target(clean_logits, source_index, area,",
                "consistency_target(clean_logits, source_index, 1 - area,",
            ),
        ),
    ),
    Mutation(
        "max_min_windows_swapped",
        "source window = least attended, target window = most attended",
        "mixing.py",
        (
            ("region_size, largest=True)", "region_size, largest=None)"),
            ("region_size, largest=False)", "region_size, largest=True)"),
            ("region_size, largest=None)", "region_size, largest=False)"),
        ),
    ),
    Mutation(
        "motivated_forward_in_train_mode",
        "the motivated forward runs with dropout on",
        "backbones/probe.py",
        (("        runner.eval()\n", "        runner.train()\n"),),
    ),
    Mutation(
        "kl_direction_reversed",
        "L_con = KL(softmax(z_mixed) ‖ target)",
        "methods/smmix.py",
        (
            (
                "consistency_loss(logits, target)",
                "torch.nn.functional.kl_div(target.log(), logits.float().softmax(-1), reduction='batchmean')",
            ),
        ),
    ),
    Mutation(
        "mixup_switch_at_0.9",
        "Mixup chosen with probability 0.9 instead of mixup_prob",
        "methods/switch.py",
        (("self.random.numpy.random() < switch_prob", "self.random.numpy.random() < 0.9"),),
    ),
    Mutation(
        "pairing_rolled",
        "sample i paired with i-1 instead of B-1-i",
        "methods/smmix.py",
        (
            (
                "source_index = flip_pairing(images.shape[0], device=images.device)",
                "source_index = torch.roll(torch.arange(images.shape[0], device=images.device), 1)",
            ),
        ),
    ),
    Mutation(
        "no_label_smoothing_in_fine",
        "L_fine without label smoothing",
        "methods/smmix.py",
        (("labels, source_index, num_classes, smoothing)", "labels, source_index, num_classes, 0.0)"),),
    ),
    Mutation(
        "motivator_ignored",
        "a given motivator is not used for scores and clean logits",
        "trainer.py",
        (
            (
                "        if self.motivator is not None:\n            return self.motivator(",
                "        if False:\n            return self.motivator(",
            ),
        ),
    ),
    Mutation(
        "swin_shift_not_undone",
        "Swin's shifted-window scores left in the shifted frame",
        "backbones/swin.py",
        (
            (
                "        if layer.shift_size > 0:\n            grid = torch.roll",
                "        if False:\n            grid = torch.roll",
            ),
        ),
    ),
    Mutation(
        "deit_one_prefix_token",
        "DeiT's distillation token counted as an image token",
        "backbones/vit.py",
        (('    name = "deit"\n    num_prefix_tokens = 2', '    name = "deit"\n    num_prefix_tokens = 1'),),
    ),
    Mutation(
        "separate_region_head_unused",
        "region_head=separate: the region rows still go through the shared classifier",
        "backbones/probe.py",
        (
            (
                "        if self._region_head is not None:\n            self._handles.append(",
                "        if False:\n            self._handles.append(",
            ),
            (
                "        if self._region_head is not None:\n            # One tensor",
                "        if False:\n            # One tensor",
            ),
        ),
    ),
    Mutation(
        "transmix_area_share_dropped",
        "TransMix λ = attention mass alone instead of ½(area + attention mass)",
        "methods/transmix.py",
        (("return 0.5 * (area_fraction + attention_share)", "return attention_share"),),
    ),
    Mutation(
        "transmix_last_query_row",
        "TransMix reads the last token's attention row instead of the class token's",
        "backbones/probe.py",
        (
            (
                "probabilities[:, :, 0, self.backbone.num_prefix_tokens :]",
                "probabilities[:, :, -1, self.backbone.num_prefix_tokens :]",
            ),
        ),
    ),
    Mutation(
        "loss_not_divided_for_accumulation",
        "the Trainer is told the loss is already scaled for gradient accumulation",
        "trainer.py",
        (("loss_is_scaled_for_ga = False", "loss_is_scaled_for_ga = True"),),
    ),
    Mutation(
        "motivation_warmup_off_by_default",
        "no motivation warm-up unless configured: max-min windows and L_con from the first step by default",
        "methods/base.py",
        (("DEFAULT_MOTIVATION_WARMUP_RATIO = 0.25", "DEFAULT_MOTIVATION_WARMUP_RATIO = 0.0"),),
    ),
    Mutation(
        "motivation_warmup_with_a_motivator",
        "a trained motivator still gets the default warm-up (random windows, no L_con) at the start",
        "methods/base.py",
        (("if unset and not motivator_given else 0.0", "if unset else 0.0"),),
    ),
    Mutation(
        "cutmix_warmup_own_generator",
        "the CutMix-form warm-up draws its boxes from a generator of its own, not the run's shared one",
        "methods/smmix.py",
        (
            ("import check_token_grid, draw_region_size", "import MixRandom, check_token_grid, draw_region_size"),
            ('CutMix("cutmix", settings, self.random, self.reweighting)', 'CutMix("cutmix", settings, MixRandom(1))'),
        ),
    ),
    Mutation(
        "cutmix_warmup_ignored",
        "motivation_warmup_mixing=cutmix is ignored: the warm-up keeps random SMMix windows",
        "methods/smmix.py",
        (('    if mixing == "cutmix":', '    if mixing == "never":'),),
    ),
    Mutation(
        "cutmix_part_is_whole_warmup",
        "motivation_warmup_mixing=cutmix_then_random_windows keeps CutMix batches for the whole warm-up",
        "methods/smmix.py",
        (("in_motivation_warmup(settings, at, part=0.5)", "in_motivation_warmup(settings, at, part=1.0)"),),
    ),
    Mutation(
        "timm_distillation_token_as_image_token",
        "timm DeiT distilled: the distillation token counted as an image token (1 prefix token)",
        "backbones/timm_vit.py",
        (("self.num_prefix_tokens = int(module.num_prefix_tokens)", "self.num_prefix_tokens = 1"),),
    ),
    Mutation(
        "timm_q_norm_skipped",
        "timm ViT score: queries not normalised by the last block's q_norm",
        "backbones/timm_vit.py",
        (("attention.q_norm(heads(query, 0))", "heads(query, 0)"),),
    ),
    Mutation(
        "timm_swin_shift_left_undone",
        "timm Swin score: the last block's cyclic shift not rolled back onto the image grid",
        "backbones/timm_swin.py",
        (("grid = torch.roll(grid, shifts=shift, dims=(1, 2))", "grid = grid"),),
    ),
)


def apply(mutation: Mutation, package: Path) -> None:
    path = package / mutation.path
    text = path.read_text()
    for old, new in mutation.edits:
        if text.count(old) != 1:
            raise SystemExit(f"mutation {mutation.name}: {old!r} occurs {text.count(old)} times in {path}; update it.")
        text = text.replace(old, new)
    path.write_text(text)


def run_tests(package_parent: Path) -> tuple[bool, str]:
    """(passed, first failing test id) of the reference tests against the package in ``package_parent``."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        *REFERENCE_TESTS,
    ]
    result = subprocess.run(command, cwd=package_parent, env=env, capture_output=True, text=True)
    failed = re.findall(r"^FAILED (\S+)", result.stdout, flags=re.MULTILINE)
    errors = re.findall(r"^ERROR (\S+)", result.stdout, flags=re.MULTILINE)
    first = (failed or errors or [""])[0]
    first = first[first.find("tests/") :] if "tests/" in first else first
    if not failed and not errors and result.returncode != 0:
        first = "(did not run: " + (result.stdout + result.stderr).strip().splitlines()[-1] + ")"
    return result.returncode == 0, first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args(argv)
    if args.list:
        for mutation in MUTATIONS:
            print(f"{mutation.name}: {mutation.description}")
        return 0
    unknown = set(args.names) - {mutation.name for mutation in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutation(s): {', '.join(sorted(unknown))}; see --list")
    chosen = [mutation for mutation in MUTATIONS if not args.names or mutation.name in args.names]

    rows, uncaught = [], []
    with tempfile.TemporaryDirectory(prefix="smmix-mutation-") as scratch:
        for mutation in chosen:
            parent = Path(scratch) / mutation.name
            shutil.copytree(ROOT / "smmix_hf", parent / "smmix_hf", ignore=shutil.ignore_patterns("__pycache__"))
            apply(mutation, parent / "smmix_hf")
            start = time.perf_counter()
            passed, first_failure = run_tests(parent)
            seconds = time.perf_counter() - start
            caught = "NOT CAUGHT" if passed else first_failure or "(collection error)"
            if passed:
                uncaught.append(mutation.name)
            rows.append((mutation.name, mutation.description, caught, seconds))
            print(f"{mutation.name}: {caught} ({seconds:.0f} s)", file=sys.stderr, flush=True)

    print("| mutation | what it breaks | caught by | s |\n|---|---|---|---|")
    for name, description, caught, seconds in rows:
        print(f"| {name} | {description} | `{caught}` | {seconds:.0f} |")
    if uncaught:
        print(f"\n{len(uncaught)} mutation(s) not caught: {', '.join(uncaught)}", file=sys.stderr)
        return 1
    print(f"\nall {len(rows)} mutations caught", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
