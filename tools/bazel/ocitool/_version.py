"""The version of ocitool (in SBOM creator and error messages)."""

from __future__ import annotations

__version__ = "0.1.0"
