"""Keep a job's resident memory close to what its data needs (pods run under fixed limits).

Arrow's default allocator (mimalloc) and glibc both keep freed memory for reuse, so a job that
loads one column group after another would otherwise hold the sum of their peaks. :func:`lean`
switches Arrow to jemalloc with immediate decay (or the system allocator where jemalloc is not
built in); :func:`release` asks glibc to return free pages.
"""

from __future__ import annotations

import ctypes
import gc
from typing import Any

__all__ = ["lean", "release"]

_trim: list[Any] = []


def lean(*, immediate: bool = True) -> str:
    """Switch Arrow to jemalloc (the system allocator where it is not built in).

    ``immediate`` returns freed memory to the OS at once (decay 0): lowest RSS, but every large
    allocation page-faults again, which costs CPU in allocation-heavy code. Without it jemalloc
    keeps its default one-second decay, still leaner than mimalloc. Returns the allocator in use.
    """
    import pyarrow as pa

    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        if immediate:
            pa.jemalloc_set_decay_ms(0)
    except (NotImplementedError, pa.ArrowNotImplementedError):
        pa.set_memory_pool(pa.system_memory_pool())
    return pa.default_memory_pool().backend_name


def release(*, collect: bool = False) -> None:
    """Hand free heap pages back to the OS (glibc only; a no-op elsewhere).

    ``collect`` also runs a full garbage collection first; only worth it when big objects may be
    held by reference cycles (it costs ~0.2 s in a process that imported great-expectations).
    """
    if collect:
        gc.collect()
    if not _trim:
        try:
            _trim.append(ctypes.CDLL("libc.so.6").malloc_trim)
        except (OSError, AttributeError):
            _trim.append(None)
    if _trim[0] is not None:
        _trim[0](0)
