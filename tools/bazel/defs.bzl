"""Public Starlark API of the ETL platform. Load rules from here only, never from private/.

    load("//tools/bazel:defs.bzl", "py_pytest_test")
"""

load("//tools/bazel/private:pytest.bzl", _py_pytest_test = "py_pytest_test")

py_pytest_test = _py_pytest_test
