"""Checks on what the user reads: one-line error messages and the command's usage-error convention."""

from __future__ import annotations

import subprocess

import pytest

USAGE_ERROR_PREFIX = "smmix-train: error: "


def usage_error_line(result: subprocess.CompletedProcess) -> str:
    """The one error line of a usage error; fails on a traceback, a second error line or another exit status."""
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith(USAGE_ERROR_PREFIX)]
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr[-3000:]
    return errors[0].removeprefix(USAGE_ERROR_PREFIX)


def one_line(error: pytest.ExceptionInfo) -> str:
    """The message of a raised exception, which must be a single line."""
    message = str(error.value)
    assert "\n" not in message, message
    return message
