"""Command-line parsing with YAML recipes: ``--config <recipe>`` sets defaults, flags win.

``--config`` takes a path or the name of a recipe shipped in :mod:`smmix_hf.recipes` (``demo``,
``deit_small_smmix``, ...). Every key of the YAML file must be an argument of the command line (or one of
its aliases, e.g. ``model`` for ``model_name_or_path``); an unknown key stops the run with its name and the
closest valid key, so no setting is silently ignored. A bad command line raises a one-line
:class:`~smmix_hf.cli.errors.UsageError` instead of printing the usage.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import yaml
from transformers import HfArgumentParser

from smmix_hf.cli.arguments import DataArguments, ModelArguments
from smmix_hf.cli.errors import PROG, UsageError
from smmix_hf.config import SMMixConfig
from smmix_hf.recipes import recipe_names, resolve_recipe

__all__ = ["build_parser", "parse_args", "read_recipe"]


class _ReportsUsageErrors(argparse.ArgumentParser):
    """Reports a bad command line as a :class:`UsageError` (one line) instead of printing the usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {PROG} --help)")


class _Parser(_ReportsUsageErrors, HfArgumentParser):
    pass


def build_parser() -> HfArgumentParser:
    parser = _Parser((ModelArguments, DataArguments, SMMixConfig), prog=PROG)
    parser.add_argument(
        "--config",
        default=None,
        help="A YAML recipe: a path, or the name of a packaged recipe (" + ", ".join(recipe_names()) + "). "
        "Command-line flags override its values.",
    )
    return parser


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The mapping stored in a YAML recipe (a path, or the name of a packaged recipe)."""
    path = resolve_recipe(str(path))
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"config file {str(path)!r} is not valid YAML ({' '.join(str(error).split())}).") from error
    if not isinstance(values, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of argument names to values.")
    return values


def _apply_recipe(parser: argparse.ArgumentParser, values: dict[str, Any], source: str) -> None:
    """Set the recipe's values as parser defaults, translating aliases to their destinations."""
    destinations: dict[str, argparse.Action] = {}
    for action in parser._actions:
        for option in action.option_strings:
            destinations[option.lstrip("-")] = action
    defaults = {}
    for key, value in values.items():
        action = destinations.get(str(key))
        if action is None or action.dest in ("help", "config"):
            valid = [name for name in destinations if name not in ("h", "help", "config")]
            closest = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.0)
            hint = f"; did you mean {closest[0]!r}?" if closest else "."
            raise ValueError(f"unknown key {key!r} in {source}{hint}")
        action.required = False
        defaults[action.dest] = value
    parser.set_defaults(**defaults)


def parse_args(argv: Sequence[str] | None = None) -> tuple[ModelArguments, DataArguments, SMMixConfig]:
    """Parse ``argv`` (default ``sys.argv[1:]``), reading ``--config`` first if given."""
    pre_parser = _ReportsUsageErrors(prog=PROG, add_help=False, allow_abbrev=False)
    pre_parser.add_argument("--config", default=None)
    known, _ = pre_parser.parse_known_args(argv)
    parser = build_parser()
    recipe = read_recipe(known.config) if known.config else {}
    if recipe:
        _apply_recipe(parser, recipe, source=known.config)
    model_args, data_args, training_args, _, unknown = parser.parse_args_into_dataclasses(
        args=argv, return_remaining_strings=True
    )  # the fourth item holds --config
    if unknown:
        raise UsageError(_unknown_arguments_message(parser, unknown))
    if data_args.base_learning_rate is not None and "learning_rate" in _given(parser, argv, recipe):
        raise UsageError(
            "--learning_rate and --base_learning_rate are both set; pass one (base_learning_rate gives "
            "lr = base_learning_rate x global batch / base_batch_size)."
        )
    return model_args, data_args, training_args


def _given(parser: argparse.ArgumentParser, argv: Sequence[str] | None, recipe: dict[str, Any]) -> set[str]:
    """Destinations the user set, on the command line or in the recipe."""
    options = {option: action.dest for action in parser._actions for option in action.option_strings}
    tokens = sys.argv[1:] if argv is None else argv
    given = {options[token.split("=", 1)[0]] for token in tokens if token.split("=", 1)[0] in options}
    return given | {options.get(f"--{key}", str(key)) for key in recipe}


def _unknown_arguments_message(parser: argparse.ArgumentParser, unknown: list[str]) -> str:
    options = [option for action in parser._actions for option in action.option_strings]
    flags = [argument for argument in unknown if argument.startswith("-")] or unknown
    closest = difflib.get_close_matches(flags[0].split("=")[0], options, n=1)
    hint = f"; did you mean {closest[0]!r}?" if closest else ""
    return f"unrecognized arguments: {' '.join(unknown)}{hint} (see {PROG} --help)"
