"""Name rules shared by the spec model and the renderer (Airflow, Kubernetes, OCI, store keys).

The patterns keep ``^...$`` because they also go into the JSON Schema (ECMA regexes, where ``$``
is the end of the text). Python code must test them with ``re.fullmatch``: with ``re.match``, ``$``
also matches before a trailing newline, so ``"etl-jobs\\n"`` would pass as a namespace.
"""

from __future__ import annotations

import hashlib
import re

from tools.bazel.storecontract import DAG_ID_PATTERN, NAME_PATTERN

__all__ = [
    "CONFIG_KEY_RE",
    "DAG_ID_RE",
    "DNS1123_LABEL_RE",
    "DNS1123_SUBDOMAIN_RE",
    "ENV_NAME_RE",
    "MODULE_RE",
    "PACKAGE_RE",
    "PARAM_NAME_RE",
    "REPOSITORY_RE",
    "TASK_ID_RE",
    "is_label_value",
    "label_value",
    "package_dns_name",
    "secret_prefix",
    "service_account_belongs",
]

# dag_id and package name: the store contract's rules (they become store keys).
DAG_ID_RE = DAG_ID_PATTERN
PACKAGE_RE = NAME_PATTERN
TASK_ID_RE = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$"
DNS1123_LABEL_RE = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS1123_SUBDOMAIN_RE = r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ENV_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
# A key of a Secret's or ConfigMap's data (Kubernetes IsConfigMapKey).
CONFIG_KEY_RE = r"^[-._a-zA-Z0-9]{1,253}$"
PARAM_NAME_RE = r"^[A-Za-z_][A-Za-z0-9_]*$"
MODULE_RE = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
# An OCI repository prefix: registry host[:port] followed by zero or more lowercase path components.
REPOSITORY_RE = (
    r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?"
    r"(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$"
)

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def is_label_value(value: str) -> bool:
    """True when ``value`` is a valid Kubernetes label value (<= 63 chars, alnum at both ends)."""
    return len(value) <= 63 and bool(_LABEL_VALUE.fullmatch(value))


def label_value(value: str) -> str:
    """Return ``value`` itself when it is a valid label value, else a stable valid stand-in.

    The stand-in keeps a readable prefix and ends with 8 hex digits of the value's sha256, so two
    different long values do not collide.
    """
    if is_label_value(value):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", value).strip("_.-")[:54].strip("_.-")
    return f"{cleaned}-{digest}" if cleaned else digest


def package_dns_name(package: str) -> str:
    """The package's name in DNS form, as Kubernetes object names need it: ``data_pipeline`` -> ``data-pipeline``."""
    return package.replace("_", "-")


def secret_prefix(package: str) -> str:
    """The prefix every Secret name of ``package`` starts with: its name in DNS form plus '-'.

    Kubernetes lets any pod of a namespace read any Secret there, so the platform ties Secrets to
    packages by name (``data_pipeline`` -> ``data-pipeline-...``). The renderer enforces it for
    what it renders; a pod created some other way is the cluster's to police.
    """
    return package_dns_name(package) + "-"


def service_account_belongs(name: str, package: str) -> bool:
    """True when ``name`` may be a service account of ``package``'s pods.

    The Secret rule (``secret_prefix``) plus the bare DNS name: ``file-processing`` or
    ``file-processing-<anything>`` for ``file_processing``. The account carries the package's cloud
    role, so a spec naming another package's account would run with that package's rights.
    infra/airflow_control_plane/admission.yaml enforces the same rule in the cluster, against the
    pod's image repository ``<prefix>/<package>``.
    """
    return name == package_dns_name(package) or name.startswith(secret_prefix(package))
