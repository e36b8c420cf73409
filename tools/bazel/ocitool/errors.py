"""Exception classes of ocitool: one small class per failure kind.

Every message quotes the bad value with ``!r`` and says what to do. The CLI prints the message
as one line and exits 1 (runtime failure) or 2 (usage error); it never shows a traceback for
these.
"""

from __future__ import annotations

__all__ = [
    "BaseBuildError",
    "ImageInputError",
    "LayerInputError",
    "LockMismatchError",
    "OciToolError",
    "PackageNotServedError",
    "RegistryAuthError",
    "RegistryError",
    "RegistryNotFoundError",
    "RegistryUnavailableError",
    "UsageError",
]


class OciToolError(Exception):
    """Base class: an expected failure with a one-line message for the user."""

    exit_code = 1


class UsageError(OciToolError):
    """A flag or environment variable has a missing or invalid value."""

    exit_code = 2


class LayerInputError(OciToolError):
    """A layer manifest entry or source file cannot be used."""


class ImageInputError(OciToolError):
    """A base image, layer blob or image option cannot be used."""


class BaseBuildError(OciToolError):
    """mmdebstrap or the normalisation of the Debian base root failed."""


class PackageNotServedError(BaseBuildError):
    """The Debian mirror no longer serves a package version pinned in the lock."""


class LockMismatchError(BaseBuildError):
    """The base built from the lock differs from what the lock records."""


class RegistryError(OciToolError):
    """The registry answered with an error we cannot recover from."""


class RegistryAuthError(RegistryError):
    """The registry refused our credentials (401) or our right to the repository (403)."""


class RegistryNotFoundError(RegistryError):
    """The registry or repository does not exist at that address (404)."""


class RegistryUnavailableError(RegistryError):
    """The registry kept failing (5xx, timeouts, refused connections) after all retries."""
