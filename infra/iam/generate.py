"""Generate the IAM policy documents of the DAG store from the package list.

    ./bazelw run //infra:update      # rewrite infra/iam/*.json (and rbac.yaml's ServiceAccounts)
    (//infra:test_infra fails when the committed files drift or a policy grants too much)

One publisher policy per package: write only under `<env>/<pkg>/` of the DAG bucket (plus reading
the other packages' metadata.json, which the publisher's dag_id collision check needs), and one
read-only policy for the sidecar. Bucket and environments are placeholders substituted at deploy
time (`${DAG_BUCKET}`, `${ENV}`), so one file serves every environment.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tools.bazel.storecontract import PackageKeys, validate_package

BUCKET = "${DAG_BUCKET}"
ENV = "${ENV}"
# The store's keys (storecontract) with ${ENV} for the env and '*' for any package.
ANY_PACKAGE = PackageKeys.pattern(ENV, "*")
ENV_PREFIX = ANY_PACKAGE.env_prefix


def packages(root: Path) -> list[str]:
    return sorted(
        p.parent.name
        for p in (root / "packages").glob("*/BUILD.bazel")
        if re.search(r"^etl_package\(", p.read_text(), re.M)
    )


def publisher_policy(pkg: str) -> dict[str, object]:
    prefix = PackageKeys.pattern(ENV, validate_package(pkg)).prefix
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteOwnPrefix",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:DeleteObject", "s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{BUCKET}/{prefix}*"],
            },
            {
                "Sid": "ListOwnPrefixAndPeers",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{BUCKET}"],
                "Condition": {"StringLike": {"s3:prefix": [ENV_PREFIX, f"{ENV_PREFIX}*"]}},
            },
            {
                "Sid": "ReadPeersMetadataForDagIdCollisions",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{BUCKET}/{ANY_PACKAGE.metadata}"],
            },
        ],
    }


def sidecar_policy() -> dict[str, object]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadDagStore",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"arn:aws:s3:::{BUCKET}/{ENV_PREFIX}*"],
            },
            {
                "Sid": "ListDagStore",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [f"arn:aws:s3:::{BUCKET}"],
                "Condition": {"StringLike": {"s3:prefix": [ENV_PREFIX, f"{ENV_PREFIX}*"]}},
            },
        ],
    }


def documents(root: Path) -> dict[str, str]:
    out = {f"publisher-{pkg}.json": publisher_policy(pkg) for pkg in packages(root)}
    out["sidecar.json"] = sidecar_policy()
    return {name: json.dumps(doc, indent=2, sort_keys=True) + "\n" for name, doc in out.items()}
