"""Keep the process small: fewer glibc malloc arenas, and freed heap returned to the OS.

The sidecar runs beside every Airflow component. Download threads would each get their own
glibc malloc arena, and freed memory stays mapped; measured on 10 packages x 1,000 files, this
grew RSS by about 1.5 MiB per package synced (flat with one arena; the GIL serialises the
threads anyway). Both calls are no-ops where glibc is absent.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["limit_malloc_arenas", "trim_heap"]

_M_ARENA_MAX = -8  # from glibc's malloc.h


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


_LIBC = _libc()


def limit_malloc_arenas(arenas: int = 1) -> bool:
    """Cap glibc's malloc arenas (as MALLOC_ARENA_MAX does); call before threads start."""
    return bool(_LIBC is not None and _LIBC.mallopt(_M_ARENA_MAX, arenas) == 1)


def trim_heap() -> bool:
    """Give freed heap pages back to the OS (glibc ``malloc_trim(0)``), e.g. after a sync cycle."""
    return bool(_LIBC is not None and _LIBC.malloc_trim(0))
