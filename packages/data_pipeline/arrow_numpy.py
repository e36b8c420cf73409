"""numpy arrays to Arrow arrays without a copy, and without ``pa.array``'s detour.

``pa.array(ndarray)`` checks for numpy masked arrays, which imports ``numpy.ma`` (tens of
milliseconds, once per process) and copies boolean data one value at a time. The numeric data of
the pipeline (line numbers, de-duplication masks, positions) is plain and null-free, so wrapping
its buffer is enough.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["bool_array", "int64_array"]


def int64_array(values: Any) -> pa.Array:
    """An int64 Arrow array sharing the memory of ``values`` (converted to contiguous int64 first)."""
    import numpy as np
    import pyarrow as pa

    data = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def bool_array(values: Any) -> pa.Array:
    """A boolean Arrow array of ``values`` (bit-packed, no nulls)."""
    import numpy as np
    import pyarrow as pa

    data = np.asarray(values, dtype=bool)
    bits = np.packbits(data, bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(data), [None, pa.py_buffer(bits)])
