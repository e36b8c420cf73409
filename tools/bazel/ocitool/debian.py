"""Debian mirror helpers: find the mirror in apt's sources, read a suite's Packages index."""

from __future__ import annotations

import gzip
import lzma
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tools.bazel.ocitool.errors import BaseBuildError, UsageError

__all__ = ["mirror_from_apt_sources", "parse_control", "served_versions"]


def mirror_from_apt_sources(root: str = "/etc/apt") -> str:
    """The first Debian archive URI in the host's apt sources (deb822 or one-line format).

    Security archives (``debian-security``) are skipped: the base needs the main archive.
    """
    base = Path(root)
    files = [*sorted((base / "sources.list.d").glob("*.sources")), base / "sources.list"]
    files += sorted((base / "sources.list.d").glob("*.list"))
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if path.suffix == ".sources":
            uris = re.findall(r"^URIs:\s*(.+)$", text, flags=re.MULTILINE)
            candidates = [u for line in uris for u in line.split()]
        else:
            candidates = re.findall(r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, flags=re.MULTILINE)
        for uri in candidates:
            if "security" not in uri and uri.startswith(("http://", "https://")):
                return str(uri).rstrip("/")
    raise UsageError(f"required flag: --mirror (no Debian archive URI found in {str(base)!r} apt sources)")


def parse_control(text: str) -> Iterator[dict[str, str]]:
    """Stanzas of a Debian control-format text (Packages index, ``dpkg-deb -f`` output)."""
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, key = {}, ""
        elif line[0] in " \t" and key:
            fields[key] += "\n" + line
        else:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    if fields:
        yield fields


def _fetch(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return bytes(resp.read())


def served_versions(mirror: str, suite: str, arch: str, *, timeout: float = 120) -> dict[tuple[str, str], str]:
    """``{(package, version): sha256}`` of ``main/binary-<arch>`` in ``suite`` on ``mirror``."""
    base = f"{mirror.rstrip('/')}/dists/{suite}/main/binary-{arch}/Packages"
    errors = []
    for suffix, decompress in ((".xz", lzma.decompress), (".gz", gzip.decompress)):
        try:
            text = decompress(_fetch(base + suffix, timeout)).decode("utf-8", errors="replace")
            break
        except (urllib.error.URLError, OSError, lzma.LZMAError, EOFError) as exc:
            errors.append(f"{base + suffix}: {exc}")
    else:
        raise BaseBuildError(f"cannot read the Packages index of {suite!r} from {mirror!r}: {'; '.join(errors)}")
    return {
        (s["Package"], s["Version"]): s.get("SHA256", "")
        for s in parse_control(text)
        if "Package" in s and "Version" in s
    }
