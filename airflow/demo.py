"""`./bazelw run //:demo`: the one-command local platform (placeholder until the demo lands)."""

from __future__ import annotations

import sys


def main() -> int:
    print(
        "demo: not yet. The local platform (moto S3, registry, sidecar, Airflow) lands with the\n"
        "control-plane work; until then `./bazelw test //...` runs every test.",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
