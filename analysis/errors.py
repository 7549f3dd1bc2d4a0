"""Errors the analysis CLIs print as one line (exit code 2) instead of a traceback."""


class AnalysisError(RuntimeError):
    """Base class: the message says what to do."""


class CollectError(AnalysisError):
    """Results that cannot be read."""


class FitError(AnalysisError, ValueError):
    """A fit that cannot be made from the given points."""
