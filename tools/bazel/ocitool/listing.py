"""A sorted, human-readable file listing of an image's layers, for golden tests.

One line per tar member::

    L2 -rw-r--r-- 0:0 1234 /app/pkg/__init__.py
    L2 lrwxrwxrwx 0:0 0 /app/current -> v1

``L<n>`` is the layer's position in the image (1 = the first, usually the base). Lines are
sorted by layer, then by path component by component, so the text is stable for the same inputs.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable, Sequence

from tools.bazel.ocitool.scan import FileInfo

__all__ = ["format_listing"]

_IFMT = {
    "-": stat.S_IFREG,
    "h": stat.S_IFREG,
    "d": stat.S_IFDIR,
    "l": stat.S_IFLNK,
    "c": stat.S_IFCHR,
    "b": stat.S_IFBLK,
    "p": stat.S_IFIFO,
}


def _line(layer: int, info: FileInfo) -> str:
    mode = stat.filemode(_IFMT.get(info.type, stat.S_IFREG) | info.mode)
    if info.type == "h":
        mode = "h" + mode[1:]
    text = f"L{layer} {mode} {info.uid}:{info.gid} {info.size} /{info.path}"
    if info.type == "l":
        text += f" -> {info.target}"
    elif info.type == "h":
        text += f" => /{info.target}"
    return text


def format_listing(layers: Sequence[tuple[int, Iterable[FileInfo]]]) -> str:
    """Listing text for ``(layer number, files)`` pairs; ends with a newline when not empty."""
    lines: list[str] = []
    for number, files in layers:
        ordered = sorted(files, key=lambda f: tuple(f.path.split("/")))
        lines.extend(_line(number, f) for f in ordered)
    return "".join(line + "\n" for line in lines)
