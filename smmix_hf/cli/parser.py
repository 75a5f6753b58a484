"""Command-line parsing with YAML recipes: ``--config recipe.yaml`` sets defaults, flags win.

Every key of the YAML file must be an argument of the command line (or one of its aliases, e.g.
``model`` for ``model_name_or_path``); an unknown key stops the run with its name and the closest
valid key, so no setting is silently ignored.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser

from smmix_hf.cli.arguments import DataArguments, ModelArguments
from smmix_hf.config import SMMixConfig

__all__ = ["build_parser", "parse_args", "read_recipe"]


def build_parser() -> HfArgumentParser:
    parser = HfArgumentParser((ModelArguments, DataArguments, SMMixConfig))
    parser.add_argument("--config", default=None, help="A YAML recipe; command-line flags override its values.")
    return parser


def read_recipe(path: str | Path) -> dict[str, Any]:
    """The mapping stored in a YAML recipe."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist.")
    values = yaml.safe_load(path.read_text()) or {}
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
    pre_parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre_parser.add_argument("--config", default=None)
    known, _ = pre_parser.parse_known_args(argv)
    parser = build_parser()
    if known.config:
        _apply_recipe(parser, read_recipe(known.config), source=known.config)
    *dataclasses, _ = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=False)
    model_args, data_args, training_args = dataclasses
    return model_args, data_args, training_args
