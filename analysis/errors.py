"""Errors the analysis CLIs print as one line (exit code 2) instead of a traceback."""
import sys
from typing import Callable, Optional


class AnalysisError(RuntimeError):
    """Base class: the message says what to do."""


class CollectError(AnalysisError):
    """Results that cannot be read."""


class FitError(AnalysisError, ValueError):
    """A fit that cannot be made from the given points."""


def run_cli(action: Callable[[], Optional[str]]) -> int:
    """Run a CLI's work and print what it returns; an AnalysisError is one `error:` line, exit 2."""
    try:
        message = action()
    except AnalysisError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if message:
        print(message)
    return 0
