"""Object keys that trip up URI encoding and signing; every S3 client test round-trips them."""

from __future__ import annotations

__all__ = ["AWKWARD_KEYS"]

AWKWARD_KEYS = [
    "dev/pkg/a b.py",
    "dev/pkg/ünïcødé/дата.json",
    "dev/pkg/plus+equals=tilde~.py",
    "dev/pkg/odd !$&'()*,;:@[]%25.txt",
    "dev/pkg/trailing space ",
]
