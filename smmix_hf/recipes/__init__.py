"""The YAML recipes shipped with the package: ``smmix-train --config <name>`` reads ``<name>.yaml`` from here.

``python -m smmix_hf.recipes`` lists them with their paths.
"""

from __future__ import annotations

import difflib
from pathlib import Path

__all__ = ["RECIPES_DIR", "recipe_names", "resolve_recipe"]

RECIPES_DIR = Path(__file__).resolve().parent


def recipe_names() -> list[str]:
    """The names ``--config`` accepts besides a path, sorted."""
    return sorted(path.stem for path in RECIPES_DIR.glob("*.yaml"))


def resolve_recipe(name_or_path: str) -> Path:
    """An existing file at ``name_or_path``, else the packaged recipe of that name (``.yaml`` optional).

    Raises ``FileNotFoundError`` naming the packaged recipes (and the closest one) when neither exists.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    name = name_or_path.removesuffix(".yaml")
    packaged = RECIPES_DIR / f"{name}.yaml"
    if "/" not in name and packaged.is_file():
        return packaged
    names = recipe_names()
    closest = difflib.get_close_matches(Path(name).name, names, n=1)
    hint = f"did you mean {closest[0]!r}? " if closest else ""
    raise FileNotFoundError(
        f"config {name_or_path!r} is neither a file nor a packaged recipe; {hint}"
        f"pass a path to a YAML file or one of: {', '.join(names)}."
    )
