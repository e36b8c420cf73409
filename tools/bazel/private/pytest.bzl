"""`py_pytest_test`: a py_test that runs pytest on its source files."""

load("@rules_python//python:defs.bzl", "py_test")

_MAIN = Label("//tools/testing:pytest_main.py")

def py_pytest_test(name, srcs, deps = [], args = [], data = [], **kwargs):
    """A Bazel test target that runs pytest on `srcs`.

    Creates `:<name>`, a `py_test` whose main is //tools/testing:pytest_main.py. pytest's results
    go to Bazel's test.xml; its exit code is the test's.

    Args:
      name: target name, e.g. `test_s3`.
      srcs: test files (`tests/test_s3.py`); pytest runs exactly these.
      deps: libraries the tests import; pytest itself is added.
      args: extra pytest arguments, e.g. `["-x"]`.
      data: runtime files the tests read.
      **kwargs: passed to py_test (size, timeout, tags, env, shard_count...).
    """
    py_test(
        name = name,
        srcs = srcs + [_MAIN],
        main = _MAIN,
        args = ["$(rootpath %s)" % s for s in srcs] + args,
        deps = deps + [
            Label("@pypi//:pytest"),
        ],
        data = data,
        python_version = "PY3",
        **kwargs
    )
