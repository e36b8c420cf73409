"""Reading S3's XML answers: namespaces ignored, first child by local name."""

from __future__ import annotations

import xml.etree.ElementTree as ET

__all__ = ["child_text", "local", "parse"]

ParseError = ET.ParseError


def local(tag: str) -> str:
    """``{http://s3.amazonaws.com/doc/2006-03-01/}Key`` -> ``Key``."""
    return tag.rsplit("}", 1)[-1]


def child_text(elem: ET.Element, name: str) -> str | None:
    """The text of ``elem``'s first child called ``name`` ("" when empty), None without one."""
    for child in elem:
        if local(child.tag) == name:
            return child.text or ""
    return None


def parse(data: bytes) -> ET.Element:
    return ET.fromstring(data)
