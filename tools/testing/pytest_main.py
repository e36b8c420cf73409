"""Entry point of every ``py_pytest_test``: runs pytest on the test files Bazel passes in.

Bazel owns test selection and sharding; pytest only runs and reports. Results go to the XML
file Bazel asks for (``XML_OUTPUT_FILE``) so they show up in the test log and BEP.
"""

from __future__ import annotations

import os
import sys

import pytest


def main() -> int:
    args = ["-p", "no:cacheprovider", "-q", "-ra"]
    xml = os.environ.get("XML_OUTPUT_FILE")
    if xml:
        args.append(f"--junitxml={xml}")
    test_filter = os.environ.get("TESTBRIDGE_TEST_ONLY")
    if test_filter:
        args += ["-k", test_filter]
    args += sys.argv[1:]
    code = pytest.main(args)
    return 0 if code == pytest.ExitCode.OK else int(code)


if __name__ == "__main__":
    sys.exit(main())
