#!/usr/bin/env bash
# The lint gate over the work tree: ruff check, ruff format --check, buildifier --mode=check.
# With --fix: ruff check --fix, ruff format, buildifier --mode=fix. Exit 1 when something is off.
set -uo pipefail
mode=check
case "${1:-}" in
  "") ;;
  --fix) mode=fix ;;
  *) echo "usage: ./bazelw run //tools/lint [-- --fix]" >&2; exit 2 ;;
esac
buildifier=$(pwd)/${BUILDIFIER:?}
ruff=${RUFF:-/opt/etl-tools/bin/ruff}
[[ -x "$ruff" ]] || { echo "lint: no ruff at $ruff (tools/toolchain/python-tools.txt installs it)" >&2; exit 2; }
cd "${BUILD_WORKSPACE_DIRECTORY:?run me with ./bazelw run //tools/lint}" || exit 2
mapfile -t starlark < <(git ls-files -- '*.bazel' '*.bzl' 'BUILD' 'WORKSPACE' ':!:tools/toolchain/stubs/**')
failed=()
if [[ $mode == fix ]]; then
  "$ruff" check --fix --quiet . || failed+=("ruff check")
  "$ruff" format --quiet . || failed+=("ruff format")
  "$buildifier" --mode=fix --lint=fix "${starlark[@]}" || failed+=(buildifier)
else
  "$ruff" check --quiet . || failed+=("ruff check")
  "$ruff" format --check --quiet . || failed+=("ruff format: run ./bazelw run //tools/lint -- --fix")
  "$buildifier" --mode=check --lint=warn "${starlark[@]}" || failed+=("buildifier: run ./bazelw run //tools/lint -- --fix")
fi
if ((${#failed[@]})); then
  printf 'lint: failed: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "lint: ok (ruff check, ruff format, buildifier: ${#starlark[@]} Starlark files)"
