"""Kubernetes resource quantities (``500m``, ``2``, ``1.5``, ``512Mi``, ``1G``, ``1e3``)."""

from __future__ import annotations

import re
from decimal import Decimal

__all__ = ["QUANTITY_RE", "parse_quantity"]

QUANTITY_RE = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([numkMGTPE]|[KMGTPE]i|[eE][+-]?[0-9]+)?$"
_QUANTITY = re.compile(QUANTITY_RE)
_SUFFIX = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}


def parse_quantity(text: str, *, kind: str) -> Decimal:
    """Return the value of a quantity (cores for cpu, bytes for memory); raise ValueError with advice."""
    example = "'500m', '1' or '2.5'" if kind == "cpu" else "'512Mi', '2Gi' or '1G'"
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity; write e.g. {example}")
    suffix = match.group(3) or ""
    if kind == "memory" and suffix in ("m", "u", "n"):
        raise ValueError(f"{text!r} is a fraction of a byte; write e.g. {example} (Mi is mebibytes)")
    if suffix[:1] in ("e", "E") and suffix not in _SUFFIX:
        value = Decimal(text)
    else:
        value = Decimal(text[: len(text) - len(suffix)]) * _SUFFIX[suffix]
    if value <= 0:
        raise ValueError(f"{text!r} is zero; a {kind} quantity must be positive")
    return value
