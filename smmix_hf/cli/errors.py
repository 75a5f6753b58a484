"""Usage errors: what the user got wrong before training started, reported as one line and exit status 2.

The argparse convention: ``smmix-train: error: <what was wrong and how to fix it>`` on stderr, no traceback.
A usage error is anything raised while the command line is parsed and checked and the data, model and
trainer are set up (a ``ValueError`` or ``FileNotFoundError``, an argparse error): see :func:`usage_errors`.
A failure once training runs keeps its traceback. ``SMMIX_DEBUG=1`` shows the traceback of usage errors too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, TypeVar

__all__ = ["PROG", "UsageError", "run_command", "usage_errors"]

PROG = "smmix-train"
DEBUG_VARIABLE = "SMMIX_DEBUG"
T = TypeVar("T")


class UsageError(ValueError):
    """A mistake in the command line, the recipe or the data and model it names; its message says how to fix it."""


@contextmanager
def usage_errors() -> Iterator[None]:
    """Turn a ``ValueError`` or ``FileNotFoundError`` raised inside the block into a :class:`UsageError`.

    Wraps the set-up phase of a run: every check there raises one of these with a one-line message.
    """
    try:
        yield
    except UsageError:
        raise
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(str(error)) from error


def fail(message: str) -> NoReturn:
    """Raise a :class:`UsageError`; an ``ArgumentParser.error`` replacement."""
    raise UsageError(message)


def one_line(message: str) -> str:
    return " ".join(message.split())


def run_command(main: Callable[[], T]) -> T:
    """Call ``main``; a :class:`UsageError` prints ``smmix-train: error: ...`` and exits 2 (``SMMIX_DEBUG=1``:
    re-raised with its traceback). Any other exception propagates with its traceback."""
    try:
        return main()
    except UsageError as error:
        if os.environ.get(DEBUG_VARIABLE, "") not in ("", "0"):
            raise
        print(f"{PROG}: error: {one_line(str(error))}", file=sys.stderr)
        sys.exit(2)
