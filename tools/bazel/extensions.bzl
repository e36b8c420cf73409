"""Module extensions of this project, for MODULE.bazel. Implementation in private/."""

load("//tools/bazel/private:pypi.bzl", _pypi = "pypi")

pypi = _pypi
