"""The packages' ServiceAccounts in rbac.yaml and their image repositories in admission.yaml,
generated from the package list.

Every ETL package's task pods run in the namespace `etl-jobs` as the package's own ServiceAccount,
named as the package in DNS form (`data_pipeline` -> `data-pipeline`, what its DAG specs name in
`service_account`) and annotated with the package's cloud role (IRSA). They sit between the
BEGIN and END marker lines of rbac.yaml; everything else in that file is written by hand.
The data of the admission policy's ConfigMap `etl-package-images` (account -> image repository)
is generated the same way, between its own marker lines in admission.yaml.
`./bazelw run //infra:update` rewrites both blocks; //infra:test_infra fails when one has drifted.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "BEGIN",
    "END",
    "IMAGES_BEGIN",
    "IMAGES_END",
    "NAMESPACE",
    "REGISTRY_PLACEHOLDER",
    "MarkersMissing",
    "account_name",
    "block",
    "images_block",
    "render",
    "render_images",
]

NAMESPACE = "etl-jobs"  # the pods' namespace: the Namespace document of rbac.yaml
BEGIN = "# BEGIN generated ServiceAccounts, one per package (./bazelw run //infra:update); do not edit"
END = "# END generated ServiceAccounts"
IMAGES_BEGIN = "  # BEGIN generated package images (./bazelw run //infra:update); do not edit"
IMAGES_END = "  # END generated package images"
REGISTRY_PLACEHOLDER = "registry.example.com/etl"  # replaced by the registry prefix at deploy time


class MarkersMissing(ValueError):
    """rbac.yaml lacks the BEGIN/END lines that delimit the generated block."""


def account_name(package: str) -> str:
    """The package's ServiceAccount (and cloud role suffix): its name in DNS form."""
    return package.replace("_", "-")


def block(packages: Iterable[str]) -> str:
    """The generated part of rbac.yaml for ``packages``, markers included."""
    docs = []
    for package in sorted(packages):
        name = account_name(package)
        docs.append(
            "---\n"
            "apiVersion: v1\n"
            "kind: ServiceAccount\n"
            "metadata:\n"
            f"  name: {name}\n"
            f"  namespace: {NAMESPACE}\n"
            f"  labels: {{app.kubernetes.io/part-of: etl-platform, etl.platform/package: {package}}}\n"
            "  annotations:\n"
            f"    eks.amazonaws.com/role-arn: arn:aws:iam::ACCOUNT_ID:role/etl-{name}\n"
            "automountServiceAccountToken: false\n"
        )
    return BEGIN + "\n" + "".join(docs) + END + "\n"


def images_block(packages: Iterable[str]) -> str:
    """The generated data of ConfigMap etl-package-images for ``packages``, markers included."""
    rows = "".join(f"  {account_name(p)}: {REGISTRY_PLACEHOLDER}/{p}\n" for p in sorted(packages))
    return IMAGES_BEGIN + "\n" + rows + IMAGES_END + "\n"


def _replace(text: str, file: str, begin: str, end: str, new_block: str) -> str:
    lines = text.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip("\n") == begin)
        stop = next(i for i, line in enumerate(lines) if i > start and line.rstrip("\n") == end)
    except StopIteration:
        raise MarkersMissing(
            f"{file}: the lines {begin.strip()!r} and {end.strip()!r} that delimit a generated "
            "block are missing; restore them"
        ) from None
    return "".join(lines[:start]) + new_block + "".join(lines[stop + 1 :])


def render(text: str, packages: Iterable[str]) -> str:
    """``text`` (rbac.yaml) with its generated block replaced by the one for ``packages``."""
    return _replace(text, "rbac.yaml", BEGIN, END, block(packages))


def render_images(text: str, packages: Iterable[str]) -> str:
    """``text`` (admission.yaml) with its generated ConfigMap data replaced by the one for ``packages``."""
    return _replace(text, "admission.yaml", IMAGES_BEGIN, IMAGES_END, images_block(packages))
