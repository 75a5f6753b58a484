"""MixSettings is the one declaration of every SMMix setting: SMMixConfig and the command line take their fields,
defaults, help and checks from it (compared with what transformers' HfArgumentParser makes of SMMixConfig), a bad
value fails at construction with the command line's own line, and docs/cli.md's table is generated from it."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import pytest
from transformers import HfArgumentParser, TrainingArguments

from smmix_hf import MixSettings, SMMixConfig
from smmix_hf.cli.parser import parse_args
from smmix_hf.cli.settings_table import replace_table
from smmix_hf.settings import DEFAULT_MOTIVATION_WARMUP_RATIO, docstring_entries

MIX_FIELDS = {item.name: item for item in dataclasses.fields(MixSettings)}
TRAINER_RUN_FIELDS = {
    "per_process_draws",
    "save_mix_examples",
    "trust_checkpoint",
    "overwrite_output_dir",
    "remove_unused_columns",
}


def test_smmix_config_declares_no_smmix_field_of_its_own():
    own = set(inspect.get_annotations(SMMixConfig))
    assert own == TRAINER_RUN_FIELDS and not own & set(MIX_FIELDS)
    config_fields = {item.name: item for item in dataclasses.fields(SMMixConfig)}
    for name, declared in MIX_FIELDS.items():
        assert config_fields[name] is declared  # the very Field object MixSettings declares
    assert set(config_fields) == set(MIX_FIELDS) | TRAINER_RUN_FIELDS | {
        f.name for f in dataclasses.fields(TrainingArguments)
    }


def test_every_setting_is_a_flag_with_its_declared_default_and_help():
    """What transformers' own parser builds from SMMixConfig: one flag per field, the declaration's default and the
    docstring entry as its help."""
    actions: dict = {}
    for action in HfArgumentParser(SMMixConfig)._actions:
        actions.setdefault(action.dest, action)  # a boolean's --no_<name> comes second
    entries = docstring_entries(MixSettings.__doc__)
    for name, declared in MIX_FIELDS.items():
        assert f"--{name}" in actions[name].option_strings
        assert actions[name].default == declared.default and actions[name].help == entries[name][1]
    assert actions["label_smoothing_factor"].default == 0.1  # MixSettings' declaration wins over TrainingArguments'


def test_each_docstring_entry_states_its_fields_type_and_default():
    for cls in (MixSettings, SMMixConfig):
        annotations = inspect.get_annotations(cls)
        for name, (spec, text) in docstring_entries(cls.__doc__).items():
            kind, _, default = spec.partition(", *optional*, defaults to ")
            assert kind == f"`{annotations[name]}`" and text, name
            assert ast.literal_eval(default.strip("`")) == cls.__dataclass_fields__[name].default, name


def test_the_docs_table_is_the_generated_one():
    page = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    assert page == replace_table(page), "run `python -m smmix_hf.cli.settings_table --write`"


# One bad value per check; the loop cases first. The command line gives the same line.
BAD = [
    ({"mixup_switch_prob": 5}, "mixup_switch_prob must be in [0, 1]; got 5"),
    ({"motivation_warmup_mixing": "cutmix_then_random"}, "motivation_warmup_mixing must be one of random_windows, "
     "cutmix, cutmix_then_random_windows; got 'cutmix_then_random'."),
    ({"fine_loss_weight": -1}, "fine_loss_weight must be >= 0; got -1"),
    ({"consistency_target": "prob"}, "consistency_target must be one of logits, probs; got 'prob'."),
    ({"region_scale_min": 0.8, "region_scale_max": 0.2}, "need 0 <= region_scale_min <= region_scale_max <= 1; got "
     "region_scale_min=0.8, region_scale_max=0.2."),
    ({"mix_method": "smix"}, "mix_method must be one of smmix, cutmix, mixup, none, transmix; got 'smix'."),
    ({"label_reweighting": "trans"}, "label_reweighting must be one of none, transmix; got 'trans'."),
    ({"mix_prob": -0.1}, "mix_prob must be in [0, 1]; got -0.1"),
    ({"mix_off_epoch": -1}, "mix_off_epoch must be >= 0 (or unset to mix to the end); got -1"),
    ({"cutmix_minmax": [0.8, 0.2]}, "cutmix_minmax must be two shares 0 < MIN <= MAX <= 1; got [0.8, 0.2]."),
    ({"region_sampling": "uniform"}, "region_sampling must be one of official, continuous; got 'uniform'."),
    ({"mixup_alpha": 0}, "mixup_alpha must be > 0 (it parameterises a Beta distribution); got 0"),
    ({"cutmix_alpha": -1}, "cutmix_alpha must be > 0 (it parameterises a Beta distribution); got -1"),
    ({"region_scale_max": 1.5}, "need 0 <= region_scale_min <= region_scale_max <= 1; got region_scale_min=0.25, "
     "region_scale_max=1.5."),
    ({"cls_loss_weight": float("nan")}, "cls_loss_weight must be >= 0; got nan."),
    ({"consistency_loss_weight": -0.5}, "consistency_loss_weight must be >= 0; got -0.5."),
    ({"motivation_warmup_epochs": -2}, "motivation_warmup_epochs must be >= 0; got -2"),
    ({"motivation_warmup_ratio": 1}, "motivation_warmup_ratio must be in [0, 1); got 1"),
    ({"motivation_warmup_ratio": 0.1, "motivation_warmup_epochs": 2}, "give motivation_warmup_ratio or "
     "motivation_warmup_epochs above 0, not both; got 0.1 and 2"),
    ({"region_head": "own"}, "region_head must be one of shared, separate; got 'own'."),
    ({"region_head": "separate", "mix_method": "cutmix"}, "region_head=separate gives L_fine its own head, so it "
     "needs mix_method=smmix with fine_loss_weight > 0; got mix_method=cutmix, fine_loss_weight=1.0."),
    ({"label_smoothing_factor": 1.0}, "label_smoothing_factor must be in [0, 1); got 1.0."),
]  # fmt: skip


@pytest.mark.parametrize(("values", "expected"), BAD, ids=["-".join(values) for values, _ in BAD])
def test_a_bad_setting_fails_at_construction_with_the_command_lines_line(values, expected):
    with pytest.raises(ValueError) as in_a_loop:
        MixSettings(**values)
    assert expected in str(in_a_loop.value) and "\n" not in str(in_a_loop.value)
    flags = [str(part) for name, value in values.items() for part in (f"--{name}", *_as_flags(value))]
    with pytest.raises(ValueError) as on_the_command_line:
        parse_args(["--model", "vit-demo", "--output_dir", "unused", "--use_cpu", "true", *flags])
    assert _same_but_numbers(str(on_the_command_line.value), str(in_a_loop.value))


def _as_flags(value: object) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def _same_but_numbers(cli: str, loop: str) -> bool:
    """The command line parses ``5`` as the float 5.0: the lines agree once numbers are compared as numbers."""
    return [_number(word) for word in cli.split()] == [_number(word) for word in loop.split()]


def _number(word: str) -> object:
    try:
        number = float(word.strip(".,;[]"))
    except ValueError:
        return word
    return "nan" if number != number else number


def test_the_warmup_default_is_a_quarter_of_the_steps_or_none_with_a_motivator():
    assert MixSettings().resolve(motivator_given=False).motivation_warmup_ratio == DEFAULT_MOTIVATION_WARMUP_RATIO
    assert MixSettings().resolve(motivator_given=True).motivation_warmup_ratio == 0.0
    asked = MixSettings(motivation_warmup_ratio=DEFAULT_MOTIVATION_WARMUP_RATIO)  # given on purpose: kept
    assert asked.resolve(motivator_given=True).motivation_warmup_ratio == DEFAULT_MOTIVATION_WARMUP_RATIO
    in_epochs = MixSettings(motivation_warmup_epochs=3).resolve(motivator_given=False)
    assert (in_epochs.motivation_warmup_ratio, in_epochs.motivation_warmup_epochs) == (0.0, 3)
    _, _, config = parse_args(["--model", "vit-demo", "--output_dir", "unused", "--use_cpu", "true"])
    assert MixSettings.from_config(config, motivator_given=True).motivation_warmup_ratio == 0.0
    assert MixSettings.from_config(config).motivation_warmup_ratio == DEFAULT_MOTIVATION_WARMUP_RATIO
    assert type(MixSettings.from_config(config)) is MixSettings


def test_the_loop_names_read_the_declared_fields():
    settings = MixSettings(region_scale_min=0.5, region_scale_max=0.5, label_smoothing_factor=0.2)
    assert settings.region_scale == (0.5, 0.5) and settings.label_smoothing == 0.2
