"""etl_core.memory: Arrow allocator switch and glibc trim."""

from __future__ import annotations

import pyarrow as pa

from etl_core import memory


def test_lean_switches_arrow_away_from_mimalloc_and_release_runs() -> None:
    previous = pa.default_memory_pool()
    try:
        backend = memory.lean()
        assert backend in {"jemalloc", "system"}
        assert pa.default_memory_pool().backend_name == backend
        table = pa.table({"x": list(range(100_000))})
        assert table.num_rows == 100_000
        del table
        memory.release(collect=True)
        memory.release()
    finally:
        pa.set_memory_pool(previous)
