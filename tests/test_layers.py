"""The package's layering, read from its source with an AST walk (module-level imports only).

- No import cycle between the package's top-level parts (``smmix_hf.data``, ``smmix_hf.cli``, ``smmix_hf.trainer``…).
- ``data/`` imports nothing from ``cli/``; nothing below the command line imports ``cli/``.
- The pure tensor modules import only the standard library, torch, numpy and each other: no model code.
- The trainer is glue: under 200 lines, and no mixing-method name appears outside ``methods/`` and the config.
- The step (``smmix_hf.task``) serves any loop: it imports neither the Trainer, its configuration, the command
  line, the data pipeline nor transformers.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "smmix_hf"
PURE_MODULES = {"smmix_hf.mixing", "smmix_hf.losses", "smmix_hf.tokens"}
PURE_ALLOWED = {"__future__", "dataclasses", "math", "typing", "collections", "torch", "numpy"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_level_imports(path: Path) -> set[str]:
    """Absolute names imported at module level, outside ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for child in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
            if isinstance(child, ast.Import):
                names.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in child.names)
    return names


def modules() -> dict[str, set[str]]:
    return {module_name(path): module_level_imports(path) for path in PACKAGE.rglob("*.py")}


def part(name: str) -> str:
    """The top-level part of the package a module belongs to: smmix_hf.data.sources -> smmix_hf.data."""
    return ".".join(name.split(".")[:2])


def test_no_cycles_between_the_package_parts():
    graph: dict[str, set[str]] = defaultdict(set)
    known = modules()
    for name, imports in known.items():
        for target in imports:
            if target.startswith("smmix_hf.") and part(target) != part(name) and part(name) != "smmix_hf":
                graph[part(name)].add(part(target))
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for successor in sorted(graph[node]):
            if state.get(successor) == 1:
                cycle = [*trail[trail.index(successor) :], successor] if successor in trail else [node, successor]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if successor not in state:
                visit(successor, [*trail, successor])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_data_and_the_library_do_not_import_the_command_line():
    for name, imports in modules().items():
        if part(name) in ("smmix_hf.cli",) or name in ("smmix_hf.__main__",):
            continue
        offending = sorted(target for target in imports if target.startswith("smmix_hf.cli"))
        assert not offending, f"{name} imports {offending}"


def test_pure_modules_have_no_model_code():
    known = modules()
    for name in PURE_MODULES:
        outside = {
            target
            for target in known[name]
            if target.split(".")[0] not in PURE_ALLOWED and not any(target.startswith(pure) for pure in PURE_MODULES)
        }
        assert not outside, f"{name} imports {sorted(outside)}"


def test_the_step_knows_no_training_loop():
    imports = modules()["smmix_hf.task"]
    loop_parts = ("smmix_hf.trainer", "smmix_hf.config", "smmix_hf.cli", "smmix_hf.data", "transformers")
    offending = sorted(target for target in imports if target.startswith(loop_parts))
    assert not offending, f"smmix_hf.task imports {offending}"


def test_the_trainer_is_glue():
    assert len((PACKAGE / "trainer.py").read_text().splitlines()) < 200


def test_method_names_live_only_in_methods_and_the_settings_declaration():
    pattern = re.compile(r"""["'](smmix|cutmix|mixup|transmix)["']""")
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("methods/") or relative == "settings.py":
            continue
        lines = path.read_text().splitlines()
        # the model card's Hub tag "smmix" names the paper, not a mixing method
        hits = [line.strip() for line in lines if pattern.search(line) and not line.startswith("_BASE_TAGS")]
        assert not hits, f"{relative} names a mixing method: {hits}"
