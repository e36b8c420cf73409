"""Start a child process that has the default signal mask and dies with its parent (Linux).

Every long-running process the demo, its control plane and the test servers start goes through
``spawn``, so for each of them:

- the child starts with no signal blocked, whatever the spawning thread had blocked: a blocked
  mask survives fork and execve, and a sidecar started with SIGTERM blocked could only be stopped
  with SIGKILL (issue 19);
- the child gets ``death_signal`` (SIGTERM by default) when its parent goes away, also when the
  parent is SIGKILLed (``prctl(PR_SET_PDEATHSIG)``), so nothing keeps listening on its ports.

PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process: spawn
from a thread that lives as long as the child should (the main thread, or a thread that waits for
the child, as ``airflow db migrate`` is waited for). The signal reaches the child itself; what it
forked in turn stops because the child stops it on SIGTERM (Airflow's components, the sidecar)
or because it forks nothing (moto, docker-registry).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["spawn"]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_SIG_SETMASK = 2  # <bits/sigaction.h>, Linux

# Resolved here, in the parent: between fork and exec the child only calls them (no dlopen, no import).
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
_prctl.restype = ctypes.c_int
# libc's sigprocmask, not signal.pthread_sigmask: CPython's wrapper runs the Python signal handlers
# of any signal it unblocks (PyErr_CheckSignals), i.e. the parent's handlers inside the child.
_sigprocmask = _libc.sigprocmask
_sigprocmask.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_sigprocmask.restype = ctypes.c_int
_EMPTY_SIGSET = ctypes.create_string_buffer(128)  # glibc's sigset_t is 1024 bits; all zero = no signal


def _child_setup(parent: int, death_signal: int) -> Callable[[], None]:
    def setup() -> None:  # in the child, between fork and exec
        if _sigprocmask(_SIG_SETMASK, ctypes.addressof(_EMPTY_SIGSET), None) != 0:
            raise OSError(ctypes.get_errno(), "sigprocmask(SIG_SETMASK, {}) failed")
        if _prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before prctl: the signal will never come
            os._exit(128 + death_signal)

    return setup


def spawn(args: Sequence[str], *, death_signal: int = signal.SIGTERM, **popen: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(args, **popen)`` whose child has an empty signal mask and gets
    ``death_signal`` when the calling thread (or the whole parent) exits. Call it from a thread
    that lives as long as the child should (see the module doc)."""
    if "preexec_fn" in popen:
        raise TypeError("spawn() sets preexec_fn itself; do the child's set-up another way")
    # preexec_fn in a threaded parent: safe here because the child runs only two libc calls resolved
    # before the fork and os.getppid() (no import, no lock, no allocation that could deadlock).
    setup = _child_setup(os.getpid(), int(death_signal))
    return subprocess.Popen(args, preexec_fn=setup, **popen)
