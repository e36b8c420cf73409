"""Progress events the publisher emits while it works (the CLI prints them; tests observe them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

__all__ = ["Event", "EventSink", "ignore_events"]


@dataclasses.dataclass(frozen=True)
class Event:
    """One step: ``kind`` is plan|image|put|copy|delete|commit|restore|warning|smoke."""

    kind: str
    message: str
    key: str | None = None
    size: int | None = None


EventSink = Callable[[Event], None]


def ignore_events(event: Event) -> None:
    """An EventSink that drops everything."""
    del event
