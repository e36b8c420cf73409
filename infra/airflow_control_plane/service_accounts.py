"""The packages' ServiceAccounts in rbac.yaml, generated from the package list.

Every ETL package's task pods run in the namespace `etl-jobs` as the package's own ServiceAccount,
named as the package in DNS form (`data_pipeline` -> `data-pipeline`, what its DAG specs name in
`service_account`) and annotated with the package's cloud role (IRSA). They sit between the
BEGIN and END marker lines of rbac.yaml; everything else in that file is written by hand.
`./bazelw run //infra:update` rewrites the block; //infra:test_infra fails when it has drifted.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["BEGIN", "END", "NAMESPACE", "MarkersMissing", "account_name", "block", "render"]

NAMESPACE = "etl-jobs"  # the pods' namespace: the Namespace document of rbac.yaml
BEGIN = "# BEGIN generated ServiceAccounts, one per package (./bazelw run //infra:update); do not edit"
END = "# END generated ServiceAccounts"


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


def render(text: str, packages: Iterable[str]) -> str:
    """``text`` (rbac.yaml) with its generated block replaced by the one for ``packages``."""
    lines = text.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip("\n") == BEGIN)
        end = next(i for i, line in enumerate(lines) if i > start and line.rstrip("\n") == END)
    except StopIteration:
        raise MarkersMissing(f"rbac.yaml: the lines {BEGIN!r} and {END!r} that delimit the generated "
                             "ServiceAccounts are missing; restore them") from None
    return "".join(lines[:start]) + block(packages) + "".join(lines[end + 1:])
