"""Shared fixtures: a training configuration builder, the command in a subprocess, and the backbone families.

- ``make_config(**overrides)``: an ``SMMixConfig`` for a short CPU run in the test's ``tmp_path``.
- ``smmix_train(*argv, debug=False)``: ``python -m smmix_hf`` (the ``smmix-train`` entry point) offline in a
  real subprocess (``messages.usage_error_line(result)`` checks the usage-error convention).
- ``tiny_family``: a test that takes this argument runs once per registered backbone family that has a
  ``tiny_config`` (see ``tests/tiny_models.py``), so a new family is tested without editing the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from run_configs import short_run_config
from tiny_models import TINY_FAMILIES

from smmix_hf import SMMixConfig


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "tiny_family" in metafunc.fixturenames:
        metafunc.parametrize("tiny_family", list(TINY_FAMILIES))


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., SMMixConfig]:
    """Build an ``SMMixConfig`` writing to ``tmp_path``: ``run_configs.TEST_RUN_DEFAULTS`` updated by the overrides."""

    def build(**overrides: object) -> SMMixConfig:
        return short_run_config(tmp_path, **overrides)

    return build


@pytest.fixture
def smmix_train(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess]:
    """Run the command offline in a subprocess (cwd ``tmp_path``); ``debug=True`` sets ``SMMIX_DEBUG=1``."""

    def run(*argv: str, debug: bool = False) -> subprocess.CompletedProcess:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        env.pop("SMMIX_DEBUG", None)
        if debug:
            env["SMMIX_DEBUG"] = "1"
        command = [sys.executable, "-m", "smmix_hf", *argv]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)

    return run
