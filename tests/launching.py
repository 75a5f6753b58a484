"""Starting real multi-process runs for tests: ``accelerate launch`` with the 2-process CPU config (gloo)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CPU_2PROC = REPO_ROOT / "configs" / "accelerate" / "cpu_2proc.yaml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accelerate_launch(script: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``script`` in 2 CPU processes; returns the finished process with its output captured."""
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_2PROC),
        "--main_process_port", str(free_port()), str(script), *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, **env})
