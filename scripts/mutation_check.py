#!/usr/bin/env python
"""Break SMMix's wiring on purpose, one bug at a time, and show which test catches each.

Each mutation edits a temporary copy of the ``smmix_hf`` package (the checkout is never touched), then runs
:data:`TESTS` against that copy: the reference tests (``tests/test_reference_*.py``), the draw distributions
(``tests/test_draw_distributions.py``) and the comparison with timm's ``Mixup`` (``tests/test_timm_mixup.py``).
Every Python process the tests start imports the copy too (see :data:`SITECUSTOMIZE`), so a test that launches
``run_smmix.py`` or ``torchrun`` tests the mutation and not the checkout. The table lists every mutation and the
first test that failed; a mutation that no test catches makes the script exit with status 1.

    python scripts/mutation_check.py            # every mutation
    python scripts/mutation_check.py --list     # their names
    python scripts/mutation_check.py kl_direction_reversed

To add a mutation, append a :class:`Mutation` to :data:`MUTATIONS` (exact text → replacement in one file of
``smmix_hf/``), and add the test that should catch it to :data:`TESTS` if no listed test file holds it.
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
# Fast tests first: pytest stops at the first failure (-x) and runs the tests in this order, duplicates included
# (--keep-duplicates; without it, a test named on its own runs where its whole file is named instead).
TESTS = tuple(
    str(ROOT / test)
    for test in (
        "tests/test_data_crop_decode.py::test_crop_boxes_are_timms_on_the_same_seeds",
        "tests/test_data_crop_decode.py::test_dct_scaling_only_where_the_box_is_at_least_twice_the_output",
        "tests/test_data_crop_decode.py::test_the_box_decoded_alone_equals_pillows_full_decode",
        "tests/test_data_crop_decode.py::test_the_transform_gives_the_same_pixels_with_and_without_the_extension",
        "tests/test_data_device_batch.py::test_device_batch_equals_timms_cpu_transform",
        "tests/test_data_device_decode.py::test_device_operations_follow_timms",
        "tests/test_draw_distributions.py::test_cutmix_box_areas_follow_timms",
        "tests/test_draw_distributions.py::test_mixup_weights_follow_beta_of_mixup_alpha",
        "tests/test_draw_distributions.py::test_mixup_switch_prob_is_the_probability_of_smmix",
        "tests/test_reference_step.py::test_smmix_step_equals_the_reference[vit]",
        "tests/test_reference_behaviour.py::test_motivated_forward_is_eval_mixed_forward_is_train",
        "tests/test_reference_transmix.py::test_transmix_cutmix_step_equals_the_reference[vit]",
        "tests/test_timm_mixup.py::test_the_same_stream_makes_the_same_batches_cutmix_as_timm",
        "tests/test_task_clock.py::test_the_count_resumes_from_the_state_dict_and_the_task_state",
        "tests/test_arms.py::test_one_step_of_each_arm_shows_its_setting[smmix_ink_oracle]",
        "tests/test_settings.py",
        "tests/test_draw_distributions.py",
        "tests/test_timm_mixup.py",
        "tests/test_reference_step.py",
        "tests/test_reference_behaviour.py",
        "tests/test_reference_transmix.py",
        "tests/test_backbones_timm_vit_swin.py",
        "tests/test_backbones_timm_generic.py",
        "tests/test_backbones_transformers_generic.py",
        "tests/test_task.py",
        "tests/test_model_copies.py",
        "tests/test_loops.py::test_timm_loop_on_two_gloo_processes_keeps_the_motivator_outside_ddp",
    )
)

# Written as sitecustomize.py into a directory at the front of PYTHONPATH, so that it runs at the start of every
# Python process the tests start: ``import smmix_hf`` then finds the mutated copy in ``parent`` before anything
# else (a script's own directory, which for run_smmix.py holds the checkout's package, or the editable install's
# finder, which is removed).
SITECUSTOMIZE = """
import importlib.machinery
import sys


class MutatedCopyFinder:
    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if fullname == "smmix_hf":
            return importlib.machinery.PathFinder.find_spec(fullname, [{parent!r}])
        return None


sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.meta_path.insert(0, MutatedCopyFinder)
"""

# Run from the checkout's root with the checkout first on sys.path, as run_smmix.py is.
WHICH_PACKAGE = "import sys; sys.path.insert(0, {root!r}); import smmix_hf; print(smmix_hf.__file__)"


@dataclass(frozen=True)
class Mutation:
    name: str
    description: str
    path: str  # inside smmix_hf/
    edits: tuple[tuple[str, str], ...]  # (exact text, replacement); each text must occur exactly once


MUTATIONS = (
    Mutation(
        "copied_hooks_live",
        "copy.deepcopy of the model (an EMA) copies the probe and its hooks instead of inert ones",
        "backbones/probe.py",
        (
            (
                "    def __deepcopy__(self, memo: dict[int, Any]) -> Callable[..., None]:\n"
                "        return _inert_hook\n",
                "",
            ),
        ),
    ),
    Mutation(
        "generic_capture_second_to_last",
        "transformers, generic: the score read from the second-to-last attention module",
        "backbones/transformers_generic.py",
        (("        return found[-1]\n", "        return found[-2]\n"),),
    ),
    Mutation(
        "generic_capture_never_armed",
        "transformers, generic: the last attention module is never armed, so it forms no probabilities",
        "backbones/transformers_generic.py",
        (("        self.recorder.armed = True\n", "        self.recorder.armed = False\n"),),
    ),
    Mutation(
        "generic_head_fed_class_token",
        "transformers, generic: the heads get the class token (the sequence's first token) instead of the region mean",
        "backbones/transformers_generic.py",
        (
            (
                "        return sequence if sequence is not None else output[0]",
                "        return sequence[:, :1].expand_as(sequence) if sequence is not None else output[0]",
            ),
        ),
    ),
    Mutation(
        "generic_registers_counted_as_image_tokens",
        "transformers, generic: DINOv2's register tokens counted as image tokens (the class token the only prefix)",
        "backbones/transformers_generic.py",
        (
            (
                'count += parameter.shape[1] if name == "register_tokens" else 1',
                'count += 0 if name == "register_tokens" else 1',
            ),
        ),
    ),
    Mutation(
        "region_labels_swapped",
        "L_fine: inside → target label, outside → source label",
        "methods/smmix.py",
        (("fine_grained_loss(region_logits, labels", "fine_grained_loss(region_logits.flip(0), labels"),),
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
        "the window method chosen with probability 0.9 instead of mixup_switch_prob",
        "methods/switch.py",
        (("self.random.numpy.random() < settings.mixup_switch_prob", "self.random.numpy.random() < 0.9"),),
    ),
    Mutation(
        "switch_prob_is_mixups",
        "mixup_switch_prob read as the probability of Mixup (neither timm's nor the official code's meaning)",
        "methods/switch.py",
        (
            ("return self.primary if self.random", "return self.alternative if self.random"),
            ("mixup_switch_prob else self.alternative", "mixup_switch_prob else self.primary"),
        ),
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
        "task.py",
        (("(scorer, self.motivator, self.self_motivation)", "(scorer, self.self_motivation)"),),
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
                "        if self._region_head is not None:\n            hook = _ProbeHook(",
                "        if False:\n            hook = _ProbeHook(",
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
        "settings.py",
        (("DEFAULT_MOTIVATION_WARMUP_RATIO = 0.25", "DEFAULT_MOTIVATION_WARMUP_RATIO = 0.0"),),
    ),
    Mutation(
        "motivation_warmup_with_a_motivator",
        "a trained motivator still gets the default warm-up (random windows, no L_con) at the start",
        "settings.py",
        (
            (
                "if self.motivation_warmup_epochs > 0 or (motivator_given and isinstance(ratio, DefaultValue)):",
                "if self.motivation_warmup_epochs > 0:",
            ),
        ),
    ),
    Mutation(
        "mix_settings_check_removed",
        "a MixSettings check removed: a probability outside [0, 1] (mixup_switch_prob=5) is accepted",
        "settings.py",
        (("            if not 0.0 <= getattr(self, name) <= 1.0:", "            if False:"),),
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
    # ---- the draws: timm's conventions and the distributions ----
    Mutation(
        "cutmix_box_side_linear",
        "CutMix's box side is (1-λ)·H instead of √(1-λ)·H",
        "draws.py",
        (("cut_ratio = math.sqrt(1.0 - target_share)", "cut_ratio = 1.0 - target_share"),),
    ),
    Mutation(
        "mixup_lambda_from_cutmix_alpha",
        "Mixup's λ drawn from Beta(cutmix_alpha) instead of Beta(mixup_alpha)",
        "methods/mixup.py",
        (("alpha = self.settings.mixup_alpha", "alpha = self.settings.cutmix_alpha"),),
    ),
    Mutation(
        "per_process_draws_ignored",
        "per_process_draws: true ignored, so all processes still share their draws",
        "trainer.py",
        (("seed = args.seed + (args.process_index if args.per_process_draws else 0)", "seed = args.seed"),),
    ),
    Mutation(
        "odd_cuts_one_pixel_short",
        "CutMix boxes rounded as timm 0.5 did: an odd cut of n pixels spans n - 1",
        "draws.py",
        (("min(center_y + (cut_h + 1) // 2, height)", "min(center_y + cut_h // 2, height)"),),
    ),
    Mutation(
        "mixup_draw_is_source_share",
        "Mixup's Beta draw used as the source's weight, not (as timm's lam) the target's",
        "methods/mixup.py",
        (("source_fraction=1.0 - target_share", "source_fraction=target_share"),),
    ),
    Mutation(
        "timm_distillation_token_as_image_token",
        "timm DeiT distilled: the distillation token counted as an image token (1 prefix token)",
        "backbones/timm_attention.py",
        (("self.num_prefix_tokens = int(module.num_prefix_tokens)", "self.num_prefix_tokens = 1"),),
    ),
    Mutation(
        "timm_q_norm_skipped",
        "timm ViT class attention (TransMix): queries not normalised by the last block's q_norm",
        "backbones/timm_attention.py",
        (("attention.q_norm(heads(query, 0))", "heads(query, 0)"),),
    ),
    Mutation(
        "timm_register_tokens_as_image_tokens",
        "generic timm path: register tokens counted as image tokens (only the class token is a prefix)",
        "backbones/timm_attention.py",
        (
            (
                "self.num_prefix_tokens = int(module.num_prefix_tokens)",
                "self.num_prefix_tokens = int(getattr(module, 'cls_token', None) is not None)",
            ),
        ),
    ),
    Mutation(
        "timm_generic_second_to_last_block",
        "generic timm path: the capture reads the second-to-last block's attention",
        "backbones/timm_attention.py",
        (("return self.backbone.blocks[-1].attn", "return self.backbone.blocks[-2].attn"),),
    ),
    Mutation(
        "timm_generic_fused_captures_nothing",
        "generic timm path: the last block stays fused in the motivated forward, so attn_drop sees nothing",
        "backbones/timm_attention.py",
        (("return _unfused(self.last_attention())", "return __import__('contextlib').nullcontext()"),),
    ),
    Mutation(
        "timm_swin_shift_left_undone",
        "timm Swin score: the last block's cyclic shift not rolled back onto the image grid",
        "backbones/timm_swin.py",
        (("grid = torch.roll(grid, shifts=shift, dims=(1, 2))", "grid = grid"),),
    ),
    Mutation(
        "task_position_ignored",
        "SMMixTask ignores the run's position: no motivation warm-up, whatever its count or set_position says",
        "task.py",
        (("        return position\n", "        return None\n"),),
    ),
    Mutation(
        "task_eval_mode_mixes",
        "SMMixTask in eval mode runs the SMMix step instead of clean cross-entropy",
        "task.py",
        (("        if not self.model.training:\n", "        if False:\n"),),
    ),
    Mutation(
        "task_state_dict_drops_the_draws",
        "loading task.state_dict() leaves the draw generators where they were",
        "task.py",
        (('        self.method.load_state_dict(state["draws"])\n', "        pass\n"),),
    ),
    Mutation(
        "task_step_count_not_restored",
        "loading task.state_dict() leaves the task's count of training calls where it was: the schedule restarts",
        "task.py",
        (('        self.clock.load_state_dict(state["clock"])\n', "        pass\n"),),
    ),
    Mutation(
        "oracle_scores_ignored",
        "the task's window scorer ignored (an oracle's or a motivator's scores): the model's own attention places "
        "the windows",
        "task.py",
        (("self.scorer(images, grid))", "self.self_motivation(images, grid))"),),
    ),
    Mutation(
        "task_mixed_forward_skips_the_wrapper",
        "the mixed forward calls the bare model, not its DDP wrapper: gradients are not averaged across processes",
        "task.py",
        (
            (
                "logits = classifier_logits(self.trainable_module, mixed.images, self.input_keyword)",
                "logits = classifier_logits(self.model, mixed.images, self.input_keyword)",
            ),
        ),
    ),
    Mutation(
        "crop_scale_drawn_on_the_side",
        "the worker's crop box draws its scale for the side instead of the area: smaller crops than timm's",
        "data/uint8_transform.py",
        (("target_area = rng.uniform(*scale) * area", "target_area = rng.uniform(*scale) ** 2 * area"),),
    ),
    Mutation(
        "dct_scaling_below_twice_the_output",
        "libjpeg's DCT scaling used for boxes only as large as the output: the crop is upsampled from a blurred decode",
        "data/crop_decode.py",
        (("if box_width >= scale * output_side and", "if box_width >= scale * output_side // 2 and"),),
    ),
    Mutation(
        "region_decode_one_column_right",
        "libjpeg-turbo is asked for the box one column to the right of the drawn one",
        "data/crop_decode.py",
        (
            (
                "pixels = _jpeg_region.decode_region(data, left, top, width, height, scale)",
                "pixels = _jpeg_region.decode_region(data, left + 1, top, width, height, scale)",
            ),
        ),
    ),
    Mutation(
        "dct_scaled_box_loses_its_fraction",
        "the box mapped onto a DCT-scaled image is rounded down to whole pixels: a shift of up to a pixel",
        "data/crop_decode.py",
        (
            (
                "scaled = (left / scale, top / scale, (left + width) / scale, (top + height) / scale)\n    limit",
                "scaled = (left // scale, top // scale, (left + width) / scale, (top + height) / scale)\n    limit",
            ),
        ),
    ),
    Mutation(
        "device_erase_ignores_the_workers_boxes",
        "the device paints the erasing noise at a place of its own (rows and columns swapped), not the worker's box",
        "data/device_batch.py",
        (
            (
                "pixels[:, top : top + height, left : left + width] = fill",
                "pixels[:, left : left + height, top : top + width] = fill",
            ),
        ),
    ),
    Mutation(
        "device_shear_wrong_way",
        "decode on the device: ShearX shears the other way than timm's Pillow operation",
        "data/device_augment.py",
        (
            (
                '        "shear_x": lambda: [1, arg, 0, 0, 1, 0],\n',
                '        "shear_x": lambda: [1, -arg, 0, 0, 1, 0],\n',
            ),
        ),
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


def isolated_environment(package_parent: Path) -> dict[str, str]:
    """The environment in which every Python process imports the package in ``package_parent`` (checked here)."""
    startup = package_parent / "startup"
    startup.mkdir(exist_ok=True)
    (startup / "sitecustomize.py").write_text(SITECUSTOMIZE.format(parent=str(package_parent)))
    python_path = os.pathsep.join(filter(None, (str(startup), str(package_parent), os.environ.get("PYTHONPATH"))))
    env = {**os.environ, "PYTHONPATH": python_path, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    check = [sys.executable, "-c", WHICH_PACKAGE.format(root=str(ROOT))]
    imported = subprocess.run(check, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not imported.startswith(str(package_parent / "smmix_hf")):
        raise SystemExit(f"a subprocess imported {imported}, not the mutated copy in {package_parent}")
    return env


def run_tests(package_parent: Path) -> tuple[bool, str]:
    """(passed, first failing test id) of :data:`TESTS` against the package in ``package_parent``."""
    options = ["-x", "-q", "--keep-duplicates", "-p", "no:cacheprovider", "-p", "no:randomly"]
    command = [sys.executable, "-m", "pytest", *options, *TESTS]
    env = isolated_environment(package_parent)
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
