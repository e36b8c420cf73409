"""Stopping the demo, however it happens: nothing it started survives, no port it opened listens.

Cases: SIGINT (Ctrl-C) or SIGTERM during start-up; SIGHUP (the terminal closed) while it runs;
`demo 2>&1 | tee` whose tee dies with the Ctrl-C, then the terminal closes (issue 19); SIGKILL of
the demo itself (its children get SIGTERM from the kernel: PR_SET_PDEATHSIG); and the sidecar the
demo started, SIGTERMed while moto is gone, exits within its grace period.

Every process the demo starts inherits its environment, so a marker variable given to the demo
finds them all in /proc, including those in their own sessions (reparented once the demo exits).
Their listening ports are read from /proc/net/tcp{,6} by socket inode while they run; after the
stop none of those ports may listen. Each case prints: processes left, ports left, time to stop.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import demo
import pytest

from sidecar.settings import Settings, stop_grace
from tools.testing.registry import registry_binary

DEMO = Path(demo.__file__)
START_TIMEOUT = 600.0  # the whole start-up on a busy 2-core machine; usually 30-90 s
STOP_TIMEOUT = 120.0  # the demo's clean-up: 20 s per Airflow component at most, 10 s for the sidecar
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column


@pytest.fixture(autouse=True)
def _registry_installed() -> None:
    # The toolchain root installs it; a missing one is a broken root, not a reason to skip.
    if registry_binary() is None:
        pytest.fail(
            "docker-registry is not installed (Debian package docker-registry; tools/toolchain/)", pytrace=False
        )


def _stats() -> dict[int, list[str]]:
    """/proc/<pid>/stat of every process, split after the command name: [state, ppid, pgrp, session, ...]."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
    return stats


def _started(stat: list[str]) -> int:
    return int(stat[19])  # starttime, field 22 of /proc/<pid>/stat: tells a reused pid apart


def processes_with(marker: str, sessions: dict[int, int], parent: int | None = None) -> dict[int, str]:
    """{pid: command line} of every live process whose environment holds ``marker``, that runs in
    one of ``sessions`` ({session id: its leader's start time}), or whose parent is ``parent``.

    The marker alone misses processes that rename themselves: setproctitle (Airflow's api-server,
    its LocalExecutor workers) overwrites the memory /proc/<pid>/environ reads. A session survives
    that, and the reparenting once the demo is gone: each child of the demo runs in its own session
    (found as a child of the demo while it runs), or in the demo's. A session id whose number now
    leads another process's session (pids are reused: pid_max is 32768 here, and other clones run
    Airflow too) is not ours.
    """
    found: dict[int, str] = {}
    needle = marker.encode()
    stats = _stats()
    for pid, stat in stats.items():
        if pid == os.getpid() or stat[0] == "Z":  # a zombie is dead; its parent has not reaped it yet
            continue
        session = int(stat[3])
        leader = stats.get(session)
        ours = session in sessions and (leader is None or _started(leader) == sessions[session])
        try:
            if not ours and int(stat[1]) != parent and needle not in Path(f"/proc/{pid}/environ").read_bytes():
                continue
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
    return found


def sessions_led_by(pids: set[int]) -> dict[int, int]:
    """{session id: its leader's start time} of the sessions ``pids`` run in, whose leader is alive."""
    stats = _stats()
    led: dict[int, int] = {}
    for pid in pids:
        session = int(stats[pid][3]) if pid in stats else None
        if session is not None and session in stats:
            led[session] = _started(stats[session])
    return led


def _tcp_table() -> list[tuple[int, str, int]]:
    """(local port, state, socket inode) of every IPv4 and IPv6 TCP socket."""
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                rows.append((int(fields[1].rpartition(":")[2], 16), fields[3], int(fields[9])))
    return rows


def listening_sockets_of(pids: set[int]) -> set[tuple[int, int]]:
    """(port, inode) of each TCP socket on which one of ``pids`` listens (found under /proc/<pid>/fd)."""
    inodes: set[int] = set()
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[len("socket:[") : -1]))
    return {(port, inode) for port, state, inode in _tcp_table() if state == LISTEN and inode in inodes}


def still_listening(sockets: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Which of these listening sockets still exist, whoever holds them now.

    By inode, not by port alone: another clone's test may listen on the same port meanwhile
    (Airflow's log server takes 8793 on every demo).
    """
    return {(port, inode) for port, state, inode in _tcp_table() if state == LISTEN and (port, inode) in sockets}


def alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


# The stop signals: none of them may be blocked. Other bits are the program's own business (Go's
# runtime, e.g. the Pushgateway's and podman's, blocks SIGUSR1/2, SIGPIPE, SIGALRM in its threads).
STOP_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)
STOP_MASK = sum(1 << (int(s) - 1) for s in STOP_SIGNALS)


def blocked_signals(pid: int) -> int:
    """The stop signals (SIGHUP, SIGINT, SIGTERM) ``pid``'s main thread blocks, as a SigBlk bit mask."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigBlk:"):
            return int(line.split()[1], 16) & STOP_MASK
    raise AssertionError(f"no SigBlk in /proc/{pid}/status")


@dataclasses.dataclass
class Demo:
    """One demo process under test."""

    proc: subprocess.Popen[bytes]
    marker: str
    log: Path  # what the demo printed (through tee, in the pipe case)
    state: Path
    tee: subprocess.Popen[bytes] | None = None
    sessions: dict[int, int] = dataclasses.field(default_factory=dict)  # the demo's and its children's

    def processes(self) -> dict[int, str]:
        return processes_with(self.marker, self.sessions)

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:  # tee has not created it yet
            return ""

    def wait_for(self, needle: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert self.proc.poll() is None, f"the demo exited {self.proc.returncode} before {needle!r}:\n{self.text()}"
            assert time.monotonic() < deadline, f"no {needle!r} after {timeout}s:\n{self.text()}"
            time.sleep(0.05)

    def platform(self) -> tuple[dict[int, str], set[tuple[int, int]]]:
        """The demo's processes now, and their listening sockets; each process has the default signal mask."""
        self.sessions |= sessions_led_by({self.proc.pid})  # the demo leads its own (start_new_session)
        self.sessions |= sessions_led_by(set(processes_with(self.marker, self.sessions, parent=self.proc.pid)))
        procs = self.processes()
        masks: dict[int, int] = {}
        for pid in procs:
            try:
                masks[pid] = blocked_signals(pid)
            except OSError:
                continue  # it exited meanwhile
        assert not any(masks.values()), {procs[p]: f"SigBlk {m:016x}" for p, m in masks.items() if m}
        return procs, listening_sockets_of(set(procs))


StartDemo = Callable[..., Demo]


def short_names(procs: dict[int, str]) -> str:
    """``3 x airflow worker, demo.py, docker-registry serve, ...`` for a report line."""
    names: collections.Counter[str] = collections.Counter()
    for cmd in procs.values():
        words = cmd.split()
        if "-m" in words[:-1]:  # python -m moto.server / sidecar / airflow scheduler
            words = words[words.index("-m") + 1 :]
            names[" ".join(words[:2]) if words[0] == "airflow" else words[0]] += 1
        elif any(w.endswith(".py") for w in words):
            names[next(Path(w).name for w in words if w.endswith(".py"))] += 1
        else:  # setproctitle'd (airflow worker -- ...) or a binary (docker-registry serve ...)
            names[" ".join([Path(words[0]).name, *words[1:2]]) if words else "?"] += 1
    return ", ".join(f"{n} x {name}" if n > 1 else name for name, n in sorted(names.items()))


def watch_stop(d: Demo, ports: set[tuple[int, int]], *, since: float, case: str, before: dict[int, str]) -> int | None:
    """From the signal on, poll until the demo has exited and no process of the platform nor any of
    its listening sockets ``ports`` is left; print the case's numbers, assert them.

    Returns the demo's exit code. The report names the slowest processes to go, measured here.
    """
    deadline = since + STOP_TIMEOUT
    seen = dict(before)
    gone_at: dict[int, float] = {}
    while True:
        procs, listening = d.processes(), still_listening(ports)
        now = time.monotonic()
        seen.update({pid: cmd for pid, cmd in procs.items() if cmd and pid not in seen})
        gone_at.update({pid: now - since for pid in seen if pid not in procs and pid not in gone_at})
        if (d.proc.poll() is not None and not procs and not listening) or now > deadline:
            break
        time.sleep(0.05)
    took = time.monotonic() - since
    slowest = sorted(((t, short_names({p: seen[p]})) for p, t in gone_at.items() if p != d.proc.pid), reverse=True)
    print(
        f"\n[{case}] processes left: {len(procs)}, ports left: {len(listening)}, time to stop: {took:.1f}s; "
        f"before: {len(before)} processes ({short_names(before)}), {len(ports)} ports {sorted(p for p, _ in ports)}; "
        f"slowest to go: {', '.join(f'{name} {t:.1f}s' for t, name in slowest[:3])}",
        flush=True,
    )
    assert procs == {}, f"{case}: left running: {procs}\n{d.text()}"
    assert listening == set(), f"{case}: still listening (port, inode): {sorted(listening)}\n{d.text()}"
    return d.proc.poll()


@pytest.fixture()
def start_demo(tmp_path: Path, build_dir: Path) -> Iterator[StartDemo]:
    """``start_demo(through_tee=False)`` runs the demo in its own session; everything is killed at the end."""
    started: list[Demo] = []

    def start(*, through_tee: bool = False) -> Demo:
        marker = f"ETL_DEMO_TEST_MARKER={uuid.uuid4().hex}"
        name, _, value = marker.partition("=")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), name: value}
        env.pop("BUILD_WORKSPACE_DIRECTORY", None)
        log = tmp_path / "demo.out"
        args = [sys.executable, str(DEMO), "--state-dir", str(tmp_path / "state"), "--build-dir", str(build_dir)]
        tee = None
        if through_tee:  # `demo 2>&1 | tee demo.out`: the demo's stdout and stderr are a pipe to tee
            tee = subprocess.Popen(
                ["tee", str(log)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True
            )
            assert tee.stdin is not None
            proc = subprocess.Popen(args, env=env, stdout=tee.stdin, stderr=subprocess.STDOUT, start_new_session=True)
            tee.stdin.close()  # tee is now the pipe's only reader
        else:
            with open(log, "wb") as out:
                proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(Demo(proc=proc, marker=marker, log=log, state=tmp_path / "state", tee=tee))
        return started[-1]

    yield start
    for d in started:  # never leave them behind, even when the test fails
        for pid in d.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in (d.proc, d.tee):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize(
    ("moment", "sig", "extra_wait"),
    [
        (f"publishing {len(demo.PACKAGES)} packages", signal.SIGINT, 0.0),  # `airflow db migrate` running in a thread
        ("Airflow processes started", signal.SIGINT, 0.0),  # the three components booting
        ("Airflow processes started", signal.SIGTERM, 3.0),  # waiting for the api-server
        ("demo: running", signal.SIGHUP, 0.0),  # the terminal closed while everything runs
    ],
)
def test_signal_leaves_nothing_running(
    start_demo: StartDemo, moment: str, sig: signal.Signals, extra_wait: float
) -> None:
    d = start_demo()
    d.wait_for(moment)
    time.sleep(extra_wait)
    started, ports = d.platform()
    assert len(started) >= 3, f"expected the demo, moto and the registry at least: {started}"
    sent = time.monotonic()
    d.proc.send_signal(sig)  # to the demo only, as `kill -INT <pid>` would (not its process group)
    code = watch_stop(d, ports, since=sent, case=f"{sig.name} at {moment!r}", before=started)
    assert code == 0, d.text()
    assert f"demo: {sig.name}: stopped everything it started" in d.text()


def test_ctrl_c_with_a_dead_tee_then_the_terminal_closes(start_demo: StartDemo) -> None:
    """`demo 2>&1 | tee demo.log`, Ctrl-C (tee dies with it), the terminal closes (SIGHUP)."""
    d = start_demo(through_tee=True)
    d.wait_for("demo: running")
    started, ports = d.platform()
    assert d.tee is not None
    d.tee.send_signal(signal.SIGINT)  # the same Ctrl-C reaches tee first: the pipe has no reader now
    d.tee.wait(timeout=10)
    sent = time.monotonic()
    d.proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    d.proc.send_signal(signal.SIGHUP)  # the terminal closes while the clean-up runs
    code = watch_stop(d, ports, since=sent, case="SIGINT + SIGHUP, stdout a pipe whose reader died", before=started)
    # 0: main() returned from its _Stop branch after the clean-up; a print to the dead pipe that
    # raised would exit 1 with a traceback, a failed flush at exit 120, SIGHUP's default -1.
    assert code == 0, f"exit {code}; what tee saw:\n{d.text()}"


def test_sigkill_of_the_demo_takes_its_children_with_it(start_demo: StartDemo) -> None:
    d = start_demo()
    d.wait_for("demo: running")
    started, ports = d.platform()
    sent = time.monotonic()
    d.proc.kill()  # no clean-up runs: only the kernel's parent-death signal reaches the children
    assert watch_stop(d, ports, since=sent, case="SIGKILL of the demo", before=started) == -signal.SIGKILL


def test_the_demos_sidecar_stops_on_sigterm_while_s3_is_gone(start_demo: StartDemo) -> None:
    d = start_demo()
    d.wait_for("demo: running")
    started, ports = d.platform()
    moto = [pid for pid, cmd in started.items() if "moto.server" in cmd]
    sidecar = [pid for pid, cmd in started.items() if " -m sidecar " in cmd]
    assert len(moto) == 1 and len(sidecar) == 1, started
    sidecar_log = d.state / "logs" / "sidecar.log"
    mark = len(sidecar_log.read_bytes())
    os.kill(moto[0], signal.SIGKILL)  # S3 is gone: every request is refused, then retried
    deadline = time.monotonic() + 60
    while b'"store_retry"' not in sidecar_log.read_bytes()[mark:]:
        assert time.monotonic() < deadline, sidecar_log.read_text()[-3000:]
        time.sleep(0.05)
    grace = stop_grace(Settings.timeout)  # the demo runs the sidecar with the default --timeout
    sent = time.monotonic()
    os.kill(sidecar[0], signal.SIGTERM)
    while alive(sidecar[0]):  # the demo reaps it within 2 s: until then it is a zombie, i.e. gone
        assert time.monotonic() - sent < 120, sidecar_log.read_text()[-3000:]
        time.sleep(0.02)
    took = time.monotonic() - sent
    print(
        f"\n[the demo's sidecar, S3 gone, SIGTERM during a store retry] exited {took:.2f}s after SIGTERM "
        f"(grace {grace:g}s)",
        flush=True,
    )
    assert took <= grace, f"{took:.1f}s from SIGTERM to exit, more than the sidecar's grace period {grace}s"
    events = [json.loads(line) for line in sidecar_log.read_bytes()[mark:].splitlines() if line.startswith(b"{")]
    assert events[-1]["event"] == "stopped", events[-3:]
    # the demo notices its sidecar is gone (it checks every 2 s) and stops the rest
    code = watch_stop(d, ports, since=sent, case="the demo, once its sidecar stopped (S3 gone)", before=started)
    assert code == 1 and "the sidecar exited with code 0" in d.text(), d.text()
