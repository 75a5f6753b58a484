"""The shipped accelerate configs load with accelerate's own reader and say what docs/distributed.md says."""

from __future__ import annotations

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "accelerate"


@pytest.mark.parametrize(
    ("name", "distributed_type", "processes", "precision"),
    [
        ("single_gpu", "NO", 1, "bf16"),
        ("multi_gpu", "MULTI_GPU", 8, "bf16"),
        ("multi_node", "MULTI_GPU", 16, "bf16"),
        ("fsdp", "FSDP", 8, "bf16"),
        ("cpu_2proc", "MULTI_GPU", 2, "no"),
    ],
)
def test_accelerate_config_loads(name, distributed_type, processes, precision):
    config = load_config_from_file(str(CONFIGS / f"{name}.yaml"))
    assert str(config.distributed_type).split(".")[-1] == distributed_type
    assert config.num_processes == processes
    assert str(config.mixed_precision).split(".")[-1].lower() == precision
    assert config.use_cpu == (name == "cpu_2proc")


def test_fsdp_config_is_fsdp2_with_transformer_block_wrapping():
    config = load_config_from_file(str(CONFIGS / "fsdp.yaml"))
    assert config.fsdp_config["fsdp_version"] == 2
    assert config.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert load_config_from_file(str(CONFIGS / "multi_node.yaml")).num_machines == 2
