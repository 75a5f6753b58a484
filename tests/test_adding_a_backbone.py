"""docs/backbones.md "Adding a backbone" stays true: a family is one module with a ``tiny_config``, and the generic
tests (``test_trainer.py``'s every-method training run and ``test_attention_probe.py``'s score and region check) run it
without an edit.

The new family here is transformers' ViT-MSN (``model_type: vit_msn``, the ViT module layout), written as a module
into ``tmp_path`` and loaded as a pytest plugin (``-p``) by a pytest subprocess, before the tests are collected,
as an import line in ``smmix_hf/backbones/__init__.py`` would load it. The registry of this process is untouched.
The training test runs there for SMMix only (its other methods take the same path).
"""

from __future__ import annotations

import os
import subprocess
import sys

from launching import REPO_ROOT
from tiny_models import families_without_tiny_config

FAMILY_MODULE = '''
from typing import ClassVar

from transformers import PretrainedConfig, ViTMSNConfig

from smmix_hf.backbones.base import register_backbone
from smmix_hf.backbones.vit import TINY_SHAPE, ViTBackbone


@register_backbone
class ViTMSNBackbone(ViTBackbone):
    """ViT-MSN: the ViT layout (one class token, q_proj / k_proj in the last layer) under its own model_type."""

    name = "vit_msn"
    classifier_class = "ViTMSNForImageClassification"
    short_names: ClassVar[dict[str, str]] = {}

    @classmethod
    def scratch_config(cls, hub_id: str) -> PretrainedConfig | None:
        return None

    @classmethod
    def tiny_config(cls, **overrides: object) -> PretrainedConfig:
        return ViTMSNConfig(**{**TINY_SHAPE, **overrides})
'''
GENERIC_TESTS = {
    "test_trainer.py": "test_every_architecture_trains_under_every_mix_method",
    "test_attention_probe.py": "test_every_family_reads_scores_and_pools_regions_without_changing_the_forward",
}


def test_every_registered_family_has_a_tiny_config():
    """The generic tests cover the families that give ``tiny_config(**overrides)``; every family must."""
    missing = families_without_tiny_config()
    assert not missing, (
        f"backbone families without a tiny_config classmethod: {', '.join(missing)}; give each a 32 px, 10-class "
        "configuration (see smmix_hf/backbones/vit.py) so that the generic tests run it."
    )


def test_a_family_in_a_new_module_runs_in_the_generic_tests(tmp_path):
    (tmp_path / "vit_msn_family.py").write_text(FAMILY_MODULE)
    tests = [str(REPO_ROOT / "tests" / name) for name in GENERIC_TESTS]
    command = [sys.executable, "-m", "pytest", "-p", "vit_msn_family", "-q", "-rA", "-p", "no:cacheprovider",
               "-k", "vit_msn and (smmix- or not test_every_architecture)", *tests]  # fmt: skip
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    passed = [line for line in result.stdout.splitlines() if line.startswith("PASSED") and "vit_msn" in line]
    for file, test in GENERIC_TESTS.items():
        assert any(f"{file}::{test}[" in line for line in passed), (file, result.stdout[-3000:])
    assert len(passed) == 2, passed  # the SMMix training run and the probe check; the other methods are alike
