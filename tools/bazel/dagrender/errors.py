"""Exception classes of dagrender: one per failure kind, each rendered as one CLI line."""

from __future__ import annotations

__all__ = [
    "DagRenderError",
    "DuplicateDagIdError",
    "InputFileError",
    "SpecError",
]


class DagRenderError(Exception):
    """Base of every expected dagrender failure; ``str()`` is the one line the CLI prints."""


class SpecError(DagRenderError):
    """A DAG spec is invalid: names the spec file and the field path."""

    def __init__(self, spec_path: str, field: str, message: str, *, more: int = 0) -> None:
        self.spec_path = spec_path
        self.field = field
        self.message = " ".join(message.split())  # one line, whatever the underlying library said
        self.more = more
        suffix = f" (and {more} more error{'s' if more != 1 else ''})" if more else ""
        super().__init__(f"{spec_path}: {field}: {self.message}{suffix}")


class InputFileError(DagRenderError):
    """An input other than the spec (digest file, entrypoints list, rendered file) is unusable."""


class DuplicateDagIdError(DagRenderError):
    """Two spec files declare the same dag_id."""
