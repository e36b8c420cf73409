"""Print 'N passed, N failed' from a Bazel build event stream (JSON lines).

A test target counts once, by its overall status. A run that failed before any test result was
written (analysis or build errors) counts as one failure, so a broken build never looks green.
Exits non-zero when anything failed. Tests that run outside Bazel (on the host: the launcher's)
are given as NAME=EXIT_CODE arguments after the two required ones and count like test targets.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence


def main(bep_path: str, bazel_rc: int, host_tests: Sequence[str] = ()) -> int:
    passed: list[str] = []
    failed: list[str] = []
    for item in host_tests:
        name, _, rc = item.rpartition("=")
        (passed if rc == "0" else failed).append(name)
    try:
        with open(bep_path, encoding="utf-8") as bep:
            lines = bep.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        event = json.loads(line)
        summary = event.get("testSummary")
        if summary is None:
            continue
        label = event["id"]["testSummary"]["label"]
        (passed if summary.get("overallStatus") == "PASSED" else failed).append(label)
    for label in sorted(failed):
        print(f"FAILED: {label}")
    count_failed = len(failed)
    if bazel_rc not in (0, 3) and count_failed == 0:
        print(f"FAILED: bazel exited {bazel_rc} before reporting test failures (build or analysis error)")
        count_failed = 1
    print(f"{len(passed)} passed, {count_failed} failed")
    return 0 if count_failed == 0 and bazel_rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3:]))
