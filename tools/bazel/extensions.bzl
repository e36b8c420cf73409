"""Module extensions of this project, for MODULE.bazel. Implementation in private/."""

load("//tools/bazel/private:debian_base.bzl", _debian_base = "debian_base")
load("//tools/bazel/private:pypi.bzl", _pypi = "pypi")

debian_base = _debian_base
pypi = _pypi
