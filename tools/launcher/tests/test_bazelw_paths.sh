#!/usr/bin/env bash
# `./bazelw run` programs see the host's files at the paths a user passes (DESIGN.md, "Paths").
#
#   tools/launcher/tests/test_bazelw_paths.sh        as root on the host, like ./bazelw; .ci/run runs it
#
# It runs the real launcher from the host: a Bazel test runs inside the toolchain root and cannot
# tell the host's files from the root's. Every check compares what a program did with what the
# host sees, so it fails when a path is not shared. It ends with the README's sidecar command:
# the real publisher writes a file:///tmp store, the real sidecar fills a /tmp dags folder.
set -euo pipefail

WS=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd -P)
cd "$WS"
PROBE=//tools/launcher:probe
QUIET=(--noshow_progress --ui_event_filters=-info --show_result=0)
passed=0

fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
probe() { ./bazelw run "${QUIET[@]}" "$PROBE" -- "$@"; }

ROOT=$(BAZELW_QUIET=1 ./bazelw --print-root)
TAG="bazelw-paths.$$.$RANDOM"
T=$(mktemp -d "/tmp/$TAG.XXXXXX")       # an existing host folder in /tmp
H=$(mktemp -d "$HOME/.$TAG.XXXXXX")     # host folders outside /tmp (the root has its own $HOME)
H_ENV=$(mktemp -d "$HOME/.$TAG.env.XXXXXX")
H_URL=$(mktemp -d "$HOME/.$TAG.url.XXXXXX")
F="$HOME/.$TAG.file"                     # a host file in a folder the root has its own of
NEW="/tmp/$TAG.new"                      # not on the host yet: a program creates it
STORE="/tmp/$TAG.store" DAGS="/tmp/$TAG.dags"
REGISTRY_PID=""

cleanup() {
  if [[ -n "$REGISTRY_PID" ]]; then kill "$REGISTRY_PID" 2>/dev/null || true; wait "$REGISTRY_PID" 2>/dev/null || true; fi
  local p
  # The launcher leaves shared folders mounted until its reaper runs; drop this test's at once.
  for p in "$H" "$H_ENV" "$H_URL" "$F" "$T" "$NEW" "$STORE" "$DAGS"; do
    if mountpoint -q "$ROOT$p" 2>/dev/null; then umount -l "$ROOT$p" 2>/dev/null || true; fi
    rmdir "$ROOT$p" 2>/dev/null || rm -f "$ROOT$p" 2>/dev/null || true
  done
  rm -rf "$T" "$H" "$H_ENV" "$H_URL" "$F" "$NEW" "$STORE" "$DAGS"
}
trap cleanup EXIT

./bazelw build "${QUIET[@]}" "$PROBE" >/dev/null 2>&1 || ./bazelw build "$PROBE"

# 1. /tmp: a program reads the host's file and creates a folder the host then has.
echo "from the host" >"$T/in.txt"
out=$(probe --read "$T/in.txt" --write "$NEW/sub/out.txt" "from the program") \
  || fail "probe in /tmp exited $? (is the host's /tmp shared? see the bazelw line above)"
[[ "$out" == "from the host" ]] || fail "the program read ${out@Q} from $T/in.txt, not the host's file"
[[ "$(cat "$NEW/sub/out.txt" 2>/dev/null)" == "from the program" ]] \
  || fail "$NEW/sub/out.txt, written by the program, is not on the host: the host's /tmp is not the program's"
ok "/tmp is the host's: read $T/in.txt, created $NEW/sub/out.txt"

# 2. A folder outside /tmp named by an argument (in --flag=PATH form too).
echo "outside /tmp" >"$H/in.txt"
out=$(probe --read="$H/in.txt" --write "$H/new/out.txt" "written") || fail "probe in $H exited $?"
[[ "$out" == "outside /tmp" ]] || fail "the program read ${out@Q} from $H/in.txt, not the host's file"
[[ "$(cat "$H/new/out.txt" 2>/dev/null)" == "written" ]] || fail "$H/new/out.txt is not on the host"
ok "a host folder outside /tmp ($H) is shared"

# 3. Environment values: a *_DIR variable and a file:/// URL (DAG_BUCKET's form).
env PROBE_DIR="$H_ENV" PROBE_STORE="file://$H_URL" ./bazelw run "${QUIET[@]}" "$PROBE" -- \
  --write-in-env PROBE_DIR "dir" --write-in-env PROBE_STORE "url" || fail "probe with PROBE_DIR and PROBE_STORE exited $?"
[[ "$(cat "$H_ENV/probe.txt" 2>/dev/null)" == "dir" ]] || fail "PROBE_DIR=$H_ENV: the program's file is not on the host"
[[ "$(cat "$H_URL/probe.txt" 2>/dev/null)" == "url" ]] || fail "PROBE_STORE=file://$H_URL: the program's file is not on the host"
ok "environment values are shared (PROBE_DIR=$H_ENV, PROBE_STORE=file://$H_URL)"

# 4. An existing file in a folder the root has its own copy of ($HOME): the file alone is shared.
echo "a file in \$HOME" >"$F"
out=$(probe --read "$F") || fail "probe --read $F exited $?"
[[ "$out" == "a file in \$HOME" ]] || fail "the program read ${out@Q} from $F, not the host's file"
ok "a host file in \$HOME ($F) is shared on its own"

# 5. The root's system folders are refused, in one line, before the program runs.
set +e
err=$(probe --read /usr/share/"$TAG" 2>&1 >/dev/null); rc=$?
set -e
[[ $rc == 2 ]] || fail "a path under /usr: exit $rc, want 2 (refused by the launcher)"
[[ "$err" == "bazelw: error: cannot share /usr/share/$TAG (a run argument) with the program: /usr is the toolchain root's own system folder, where programs see the root's files; use a path outside "* ]] \
  || fail "a path under /usr: want one 'bazelw: error: cannot share ...' line, got: $err"
[[ $(wc -l <<<"$err") == 1 ]] || fail "a path under /usr: want one line, got: $err"
ok "a path under /usr is refused in one line"

# 6. A path under a folder the root has its own of, missing on the host: refused with the fix.
set +e
err=$(probe --write "$HOME/$TAG.missing/out.txt" x 2>&1 >/dev/null); rc=$?
set -e
[[ $rc == 2 && "$err" == *"the toolchain root has its own $HOME"*"create it on the host first (mkdir -p $HOME/$TAG.missing/out.txt"* ]] \
  || fail "a missing path in \$HOME: want exit 2 and 'create it on the host first', got $rc: $err"
ok "a missing path in \$HOME is refused with the fix"

# 7. Nothing of the path exists on the host: one note line, and the program runs.
set +e
err=$(probe --read "/$TAG.nowhere/in.txt" 2>&1 >/dev/null); rc=$?
set -e
[[ "$err" == *"bazelw: note: /$TAG.nowhere/in.txt (a run argument) is not shared with the program: /$TAG.nowhere does not exist on the host"* ]] \
  || fail "a path with no host folder: want a 'bazelw: note:' line, got: $err"
[[ $rc == 1 && "$err" == *"probe: error: cannot read"* ]] || fail "a path with no host folder: the program should run and fail to read it, got $rc: $err"
ok "a path with no host folder gets a note line"

# 8. The README's sidecar command: the real publisher writes a file:///tmp store, the real
# sidecar fills a /tmp dags folder, and both are the host's. The publisher pushes the image
# first, so a docker-registry (the root's, as the tests use) runs on a free loopback port.
port=$((20000 + RANDOM % 20000))
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((20000 + RANDOM % 20000)); done
mkdir -p "$T/registry"
cat >"$T/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $T/registry}}
http: {addr: 127.0.0.1:$port, secret: bazelw-paths-test}
EOF
chroot "$ROOT" /usr/bin/docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" || fail "docker-registry did not start: $(tail -n 3 "$T/registry.log")"

DAG_BUCKET=file://$STORE ./bazelw run "${QUIET[@]}" "--//tools/bazel:image_repository=127.0.0.1:$port/etl" \
  //packages/observability:publish >"$T/publish.out" 2>&1 || { cat "$T/publish.out" >&2; fail "publish to file://$STORE exited non-zero"; }
[[ -f "$STORE/dev/observability/metadata.json" ]] || fail "$STORE/dev/observability/metadata.json is not on the host after the publish"
./bazelw run "${QUIET[@]}" //sidecar -- --once --dag-bucket "file://$STORE" --dags-dir "$DAGS" >"$T/sidecar.out" 2>&1 \
  || { cat "$T/sidecar.out" >&2; fail "sidecar --once exited non-zero"; }
n=0
for f in "$STORE"/dev/observability/dags/*.py; do
  cmp -s "$f" "$DAGS/observability/${f##*/}" || fail "$DAGS/observability/${f##*/} on the host differs from the store's $f"
  n=$((n + 1))
done
(( n > 0 )) || fail "no DAG files in $STORE/dev/observability/dags"
ok "publish to file://$STORE and sidecar --once --dags-dir $DAGS: the host has $n DAG files in $DAGS/observability/"

echo "$passed passed, 0 failed"
