"""`./bazelw run //infra:update`: regenerate the files under infra/ that derive from the packages.

- `infra/iam/publisher-<pkg>.json` and `sidecar.json` (iam/generate.py);
- the ServiceAccounts block of `infra/airflow_control_plane/rbac.yaml` and the package images of
  the admission policy's ConfigMap in `infra/airflow_control_plane/admission.yaml` (service_accounts.py).

They are committed, not built, because what applies them (IAM tooling, `kubectl apply`, a GitOps
controller) does not run Bazel, and because a new package's cloud role and ServiceAccount are
changes a reviewer should see in the diff. //infra:test_infra fails when they have drifted, and
`./bazelw run //:new_package` runs this after scaffolding, so adding a package edits nothing here
by hand. Prints each file it changed; exit 0.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from infra.airflow_control_plane import service_accounts
from infra.iam import generate

__all__ = ["RBAC", "expected_files", "update"]

RBAC = Path("infra/airflow_control_plane/rbac.yaml")
ADMISSION = Path("infra/airflow_control_plane/admission.yaml")
IAM = Path("infra/iam")


def expected_files(root: Path) -> dict[Path, str]:
    """Path (relative to ``root``) -> content, of every generated file, for the packages under ``root``."""
    packages = generate.packages(root)
    out = {IAM / name: text for name, text in generate.documents(root).items()}
    out[RBAC] = service_accounts.render((root / RBAC).read_text(), packages)
    out[ADMISSION] = service_accounts.render_images((root / ADMISSION).read_text(), packages)
    return out


def update(root: Path) -> list[Path]:
    """Write the generated files under ``root`` that differ, delete stale IAM documents; return what changed."""
    expected = expected_files(root)
    changed = []
    for stale in sorted((root / IAM).glob("*.json")):
        if stale.relative_to(root) not in expected:
            stale.unlink()
            changed.append(stale.relative_to(root))
    for rel, text in expected.items():
        path = root / rel
        if not path.is_file() or path.read_text() != text:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text)
            tmp.replace(path)  # readers never see half a file
            changed.append(rel)
    return changed


def main() -> int:
    root = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY") or Path(__file__).resolve().parents[1])
    changed = update(root)
    for rel in changed:
        print(f"infra: {'removed' if not (root / rel).exists() else 'wrote'} {rel}")
    if not changed:
        print("infra: every generated file is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
