"""An SPDX 2.3 JSON SBOM for an image: its Debian packages and its installed wheels.

Debian packages come from the base lock (name, version, architecture and the ``.deb``'s sha256);
wheels from the ``*.dist-info`` directories found in the image's layers (name and version from
``METADATA``; the checksum is the sha256 of the installed ``RECORD`` file, which lists every
installed file with its own hash). The document is deterministic: fixed creation time, sorted
packages, a namespace derived from the image's manifest digest.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from email.parser import BytesHeaderParser
from typing import Any

from tools.bazel.ocitool.scan import DistInfo

__all__ = ["DebPackage", "build_sbom", "canonical_name", "deb_packages_from_lock"]

SPDX_CREATED = "1970-01-01T00:00:00Z"


class DebPackage:
    """A ``.deb`` in the base: name, version, architecture, sha256 of the ``.deb`` file."""

    def __init__(self, *, name: str, version: str, architecture: str, sha256: str) -> None:
        self.name = name
        self.version = version
        self.architecture = architecture
        self.sha256 = sha256


def deb_packages_from_lock(lock: Mapping[str, Any]) -> list[DebPackage]:
    """The ``packages`` of a base lock (see ``ocitool.base``)."""
    default_arch = str(lock.get("architecture", "amd64"))
    return [
        DebPackage(
            name=str(p["name"]),
            version=str(p["version"]),
            architecture=str(p.get("architecture", default_arch)),
            sha256=str(p.get("sha256", "")),
        )
        for p in lock.get("packages", [])
    ]


def canonical_name(name: str) -> str:
    """PEP 503 normalised project name (``Foo_Bar`` -> ``foo-bar``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _spdx_id(*parts: str) -> str:
    return "SPDXRef-" + re.sub(r"[^A-Za-z0-9.-]+", "-", "-".join(parts))


def _checksums(sha256_hex: str) -> list[dict[str, str]]:
    return [{"algorithm": "SHA256", "checksumValue": sha256_hex}] if sha256_hex else []


def _deb_package(pkg: DebPackage) -> dict[str, Any]:
    purl = f"pkg:deb/debian/{pkg.name}@{pkg.version}?arch={pkg.architecture}"
    return {
        "SPDXID": _spdx_id("deb", pkg.name, pkg.version),
        "name": pkg.name,
        "versionInfo": pkg.version,
        "supplier": "Organization: Debian",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "checksums": _checksums(pkg.sha256),
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "OPERATING-SYSTEM" if pkg.name == "base-files" else "LIBRARY",
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl,
            }
        ],
        "comment": "Debian binary package; checksum is the sha256 of the .deb",
    }


def _wheel_package(dist: DistInfo) -> dict[str, Any] | None:
    headers = BytesHeaderParser().parsebytes(dist.metadata)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        return None
    name, version = str(name).strip(), str(version).strip()
    purl = f"pkg:pypi/{canonical_name(name)}@{version}"
    digest = hashlib.sha256(dist.record).hexdigest() if dist.record is not None else ""
    package: dict[str, Any] = {
        "SPDXID": _spdx_id("pypi", canonical_name(name), version),
        "name": name,
        "versionInfo": version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "checksums": _checksums(digest),
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "LIBRARY",
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl,
            }
        ],
        "comment": f"Python distribution installed at {dist.directory}; checksum is the sha256 of its RECORD",
    }
    summary = headers.get("Summary")
    if summary:
        package["summary"] = " ".join(str(summary).split())
    return package


def build_sbom(
    *,
    image_name: str,
    manifest_digest: str,
    debs: Sequence[DebPackage],
    dists: Iterable[DistInfo],
    tool_version: str,
) -> dict[str, Any]:
    """The SPDX 2.3 document as a dict (serialise with ``sbom_bytes``)."""
    image_id = "SPDXRef-image"
    packages: dict[str, dict[str, Any]] = {}
    for pkg in debs:
        entry = _deb_package(pkg)
        packages[entry["SPDXID"]] = entry
    for dist in dists:
        wheel = _wheel_package(dist)
        if wheel is not None:
            packages[wheel["SPDXID"]] = wheel
    hex_digest = manifest_digest.split(":", 1)[-1]
    image_package = {
        "SPDXID": image_id,
        "name": image_name,
        "versionInfo": manifest_digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "checksums": _checksums(hex_digest),
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "comment": "OCI image; checksum is the sha256 of its manifest",
    }
    ordered = [packages[k] for k in sorted(packages)]
    relationships = [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": image_id,
        }
    ]
    relationships += [
        {
            "spdxElementId": image_id,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": p["SPDXID"],
        }
        for p in ordered
    ]
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": image_name,
        "documentNamespace": f"https://spdx.org/spdxdocs/{re.sub(r'[^A-Za-z0-9.-]+', '-', image_name)}-{hex_digest}",
        "creationInfo": {
            "created": SPDX_CREATED,
            "creators": [f"Tool: ocitool-{tool_version}"],
        },
        "documentDescribes": [image_id],
        "packages": [image_package, *ordered],
        "relationships": relationships,
    }


def sbom_bytes(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
