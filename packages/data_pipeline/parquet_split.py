"""Write one Parquet file with its column chunks encoded on two threads.

pyarrow's Parquet writer encodes the columns of a row group one after another on the calling
thread (Arrow C++ can encode them in parallel, but pyarrow does not expose that switch). The
columns of a Parquet file are independent of each other, though: a column chunk's bytes depend
only on that column and the writer options. So :func:`write_table_split` writes the first columns
and the last columns as two ordinary Parquet files at the same time (the writer releases the GIL),
then joins them: the second file's column chunks are appended after the first's, and one footer
describes them all, its byte offsets moved by where the second file's chunks now start.

The result is byte for byte the file ``pyarrow.parquet.write_table`` writes with the same options
(same pages, encodings, statistics and Arrow schema; the tests check it). It covers tables that fit
in one row group (``row_group_size`` must be given) with flat columns, written without a page
index; anything else is written the plain way, as is a footer with fields the join does not know.

The footer is Thrift compact protocol; :class:`_Compact` reads and writes it generically (fields by
id and wire type), and :func:`_merge_footers` knows the few Parquet metadata fields that hold byte
offsets or per-column lists.
"""

from __future__ import annotations

import struct
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["write_table_split"]

_MAGIC = b"PAR1"

# Thrift compact wire types.
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)

# Parquet metadata field ids (parquet.thrift).
_FMD_SCHEMA, _FMD_ROW_GROUPS, _FMD_KV, _FMD_COLUMN_ORDERS = 2, 4, 5, 7
_FMD_ENCRYPTION = (8, 9)
_SE_NUM_CHILDREN = 5
_RG_COLUMNS, _RG_TOTAL_BYTE_SIZE, _RG_NUM_ROWS, _RG_TOTAL_COMPRESSED = 1, 2, 3, 6
_CC_FILE_PATH, _CC_META = 1, 3
_CC_OFFSETS = (2, 4, 6)  # file_offset, offset_index_offset, column_index_offset
_CC_ENCRYPTED = (8, 9)
_CMD_OFFSETS = (9, 10, 11, 14)  # data_page, index_page, dictionary_page, bloom_filter offsets
_KV_KEY, _KV_VALUE = 1, 2
_ARROW_SCHEMA = b"ARROW:schema"


class _Unsupported(Exception):
    """The footer has something the join does not handle: write the plain way."""


# A struct is a list of [field id, wire type, value]; a list is [element type, [values]].
Struct = list[list[Any]]


class _Compact:
    """Thrift compact protocol: decode a struct into :data:`Struct` form and encode it back."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def _varint(self) -> int:
        shift = result = 0
        while True:
            byte = self._byte()
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    def _zigzag(self) -> int:
        value = self._varint()
        return (value >> 1) ^ -(value & 1)

    def _value(self, kind: int) -> Any:
        if kind in (_TRUE, _FALSE):
            return kind == _TRUE
        if kind == _BYTE:
            return self._byte()
        if kind in (_I16, _I32, _I64):
            return self._zigzag()
        if kind == _DOUBLE:
            value = self.data[self.pos : self.pos + 8]
            self.pos += 8
            return value
        if kind == _BINARY:
            size = self._varint()
            value = self.data[self.pos : self.pos + size]
            self.pos += size
            return value
        if kind in (_LIST, _SET):
            header = self._byte()
            size = header >> 4
            if size == 15:
                size = self._varint()
            element = header & 0x0F
            if element in (_TRUE, _FALSE):  # booleans in a list are one byte each
                return [element, [self._byte() == 1 for _ in range(size)]]
            return [element, [self._value(element) for _ in range(size)]]
        if kind == _STRUCT:
            return self.read_struct()
        raise _Unsupported(f"Thrift wire type {kind}")  # maps: Parquet metadata has none

    def read_struct(self) -> Struct:
        fields: Struct = []
        last = 0
        while True:
            header = self._byte()
            if header == 0:
                return fields
            delta, kind = header >> 4, header & 0x0F
            field = last + delta if delta else self._zigzag()
            fields.append([field, kind, self._value(kind)])
            last = field

    @staticmethod
    def _put_varint(out: bytearray, value: int) -> None:
        while True:
            if value < 0x80:
                out.append(value)
                return
            out.append((value & 0x7F) | 0x80)
            value >>= 7

    @classmethod
    def _put_zigzag(cls, out: bytearray, value: int) -> None:
        cls._put_varint(out, (value << 1) ^ (value >> 63))

    @classmethod
    def _put_value(cls, out: bytearray, kind: int, value: Any) -> None:
        if kind in (_TRUE, _FALSE):
            return  # a struct field's boolean lives in its header
        if kind == _BYTE:
            out.append(value)
        elif kind in (_I16, _I32, _I64):
            cls._put_zigzag(out, value)
        elif kind == _DOUBLE:
            out += value
        elif kind == _BINARY:
            cls._put_varint(out, len(value))
            out += value
        elif kind in (_LIST, _SET):
            element, items = value
            if len(items) < 15:
                out.append((len(items) << 4) | element)
            else:
                out.append(0xF0 | element)
                cls._put_varint(out, len(items))
            for item in items:
                if element in (_TRUE, _FALSE):
                    out.append(1 if item else 2)
                else:
                    cls._put_value(out, element, item)
        elif kind == _STRUCT:
            cls.write_struct(out, value)
        else:
            raise _Unsupported(f"Thrift wire type {kind}")

    @classmethod
    def write_struct(cls, out: bytearray, fields: Struct) -> None:
        last = 0
        for field, kind, value in fields:
            wire = (_TRUE if value else _FALSE) if kind in (_TRUE, _FALSE) else kind
            if 0 < field - last <= 15:
                out.append(((field - last) << 4) | wire)
            else:
                out.append(wire)
                cls._put_zigzag(out, field)
            cls._put_value(out, kind, value)
            last = field
        out.append(0)


def _get(fields: Struct, field: int) -> list[Any] | None:
    return next((item for item in fields if item[0] == field), None)


def _footer_of_file(handle: Any) -> tuple[int, Struct]:
    """:func:`_footer` of an open file, reading only its head and tail."""
    head = handle.read(len(_MAGIC))
    total = handle.seek(0, 2)
    handle.seek(total - 8)
    tail = handle.read(8)
    if head != _MAGIC or tail[4:] != _MAGIC:
        raise _Unsupported("not a plain (unencrypted) Parquet file")
    size = struct.unpack("<i", tail[:4])[0]
    start = total - 8 - size
    handle.seek(start)
    return start, _Compact(handle.read(size)).read_struct()


def _shift_column(chunk: Struct, by: int) -> None:
    for item in chunk:
        if item[0] in _CC_ENCRYPTED or (item[0] == _CC_FILE_PATH and item[2]):
            raise _Unsupported("column chunk in another file or encrypted")
        if item[0] in _CC_OFFSETS and item[2] > 0:  # 0: not set (pyarrow leaves file_offset at 0)
            item[2] += by
        elif item[0] == _CC_META:
            for meta in item[2]:
                if meta[0] in _CMD_OFFSETS and meta[2] > 0:
                    meta[2] += by


def _merge_footers(first: Struct, second: Struct, shift: int, arrow_schema: bytes | None) -> Struct:
    """The footer of the first file's columns followed by the second's (moved by ``shift`` bytes)."""
    if any(_get(meta, field) for meta in (first, second) for field in _FMD_ENCRYPTION):
        raise _Unsupported("encrypted footer")
    merged = [list(item) for item in first]
    schema_a, schema_b = _get(first, _FMD_SCHEMA), _get(second, _FMD_SCHEMA)
    groups_a, groups_b = _get(first, _FMD_ROW_GROUPS), _get(second, _FMD_ROW_GROUPS)
    if not (schema_a and schema_b and groups_a and groups_b) or len(groups_a[2][1]) != len(groups_b[2][1]):
        raise _Unsupported("schema or row groups missing or different")
    root = [list(item) for item in schema_a[2][1][0]]
    children = _get(root, _SE_NUM_CHILDREN)
    children_b = _get(schema_b[2][1][0], _SE_NUM_CHILDREN)
    if children is None or children_b is None:
        raise _Unsupported("schema root without children")
    children[2] += children_b[2]
    _get(merged, _FMD_SCHEMA)[2] = [_STRUCT, [root, *schema_a[2][1][1:], *schema_b[2][1][1:]]]  # type: ignore[index]
    row_groups = []
    for group_a, group_b in zip(groups_a[2][1], groups_b[2][1], strict=True):
        group = [list(item) for item in group_a]
        if _get(group_a, _RG_NUM_ROWS)[2] != _get(group_b, _RG_NUM_ROWS)[2]:  # type: ignore[index]
            raise _Unsupported("row groups of different sizes")
        columns_b = _get(group_b, _RG_COLUMNS)[2][1]  # type: ignore[index]
        for chunk in columns_b:
            _shift_column(chunk, shift)
        for chunk in _get(group_a, _RG_COLUMNS)[2][1]:  # type: ignore[index]
            _shift_column(chunk, 0)  # checks only
        _get(group, _RG_COLUMNS)[2] = [_STRUCT, [*_get(group_a, _RG_COLUMNS)[2][1], *columns_b]]  # type: ignore[index]
        for field in (_RG_TOTAL_BYTE_SIZE, _RG_TOTAL_COMPRESSED):
            mine, theirs = _get(group, field), _get(group_b, field)
            if mine is not None and theirs is not None:
                mine[2] += theirs[2]
        row_groups.append(group)
    _get(merged, _FMD_ROW_GROUPS)[2] = [_STRUCT, row_groups]  # type: ignore[index]
    orders_a, orders_b = _get(first, _FMD_COLUMN_ORDERS), _get(second, _FMD_COLUMN_ORDERS)
    if (orders_a is None) != (orders_b is None):
        raise _Unsupported("column orders on one side only")
    if orders_a is not None and orders_b is not None:
        _get(merged, _FMD_COLUMN_ORDERS)[2] = [orders_a[2][0], [*orders_a[2][1], *orders_b[2][1]]]  # type: ignore[index]
    kv = _get(merged, _FMD_KV)
    if kv is not None:
        entries = []
        for entry in kv[2][1]:
            if _get(entry, _KV_KEY)[2] == _ARROW_SCHEMA:  # type: ignore[index]
                if arrow_schema is None:
                    continue
                entry = [[_KV_KEY, _BINARY, _ARROW_SCHEMA], [_KV_VALUE, _BINARY, arrow_schema]]
            entries.append(entry)
        kv[2] = [_STRUCT, entries]
    return merged


def _split_point(table: pa.Table) -> int:
    """The column index that splits the encoding work in two halves (bytes plus a per-value cost)."""
    costs = [column.nbytes + 8 * len(column) for column in table.columns]
    total, running, best, best_gap = sum(costs), 0, 1, None
    for index, cost in enumerate(costs[:-1], start=1):
        running += cost
        gap = abs(total - 2 * running)
        if best_gap is None or gap < best_gap:
            best, best_gap = index, gap
    return best


def write_table_split(table: pa.Table, path: str | Path, **options: Any) -> None:
    """``pyarrow.parquet.write_table(table, path, **options)``, encoding the columns on two threads."""
    import base64

    import pyarrow as pa
    import pyarrow.parquet as pq

    flat = all(not pa.types.is_nested(field.type) for field in table.schema)
    # One row group (several would be laid out column group by column group, not row group by row
    # group), no page index (it would sit between the two halves), the Arrow schema stored.
    one_group = 0 < table.num_rows <= (options.get("row_group_size") or 0)
    plain_layout = not options.get("write_page_index") and options.get("store_schema", True)
    if table.num_columns < 2 or not one_group or not flat or not plain_layout:
        pq.write_table(table, path, **options)
        return
    path = Path(path)
    cut = _split_point(table)
    # The second half goes to a file beside ``path`` (a memory buffer would add its size, doubled
    # while it grows, to the peak RSS) and is copied in from the page cache.
    second_path = path.with_name(path.name + ".columns")
    failure: list[BaseException] = []

    def write_second() -> None:
        try:
            pq.write_table(table.select(range(cut, table.num_columns)), second_path, **options)
        except BaseException as exc:
            failure.append(exc)

    worker = threading.Thread(target=write_second, name="parquet-columns")
    worker.start()
    try:
        pq.write_table(table.select(range(cut)), path, **options)
    finally:
        worker.join()
    try:
        if failure:
            raise failure[0]
        with open(path, "r+b") as handle, open(second_path, "rb") as second:
            try:
                body_end, footer_a = _footer_of_file(handle)
                body_end_b, footer_b = _footer_of_file(second)
                # pyarrow stores the Arrow schema base64-encoded, as an IPC message.
                arrow_schema = base64.b64encode(table.schema.serialize().to_pybytes())
                merged = _merge_footers(footer_a, footer_b, body_end - len(_MAGIC), arrow_schema)
            except _Unsupported:
                handle.seek(0)
                handle.truncate()
                pq.write_table(table, handle, **options)
                return
            footer = bytearray()
            _Compact.write_struct(footer, merged)
            handle.seek(body_end)
            handle.truncate()
            handle.flush()
            _copy_range(second, handle, len(_MAGIC), body_end_b - len(_MAGIC))
            handle.write(footer)
            handle.write(struct.pack("<i", len(footer)))
            handle.write(_MAGIC)
    finally:
        second_path.unlink(missing_ok=True)


def _copy_range(source: Any, target: Any, offset: int, size: int) -> None:
    """Append ``size`` bytes of ``source`` from ``offset`` to ``target`` (both open files)."""
    import os

    target.flush()
    out = target.fileno()
    done = 0
    try:
        while done < size:
            sent = os.sendfile(out, source.fileno(), offset + done, size - done)
            if sent == 0:
                break
            done += sent
    except (AttributeError, OSError):
        pass
    if done < size:  # no sendfile here: copy through a buffer
        source.seek(offset + done)
        while done < size:
            block = source.read(min(1 << 20, size - done))
            if not block:
                raise OSError(f"{source.name} ended early while joining Parquet columns")
            target.write(block)
            done += len(block)
    target.seek(0, 2)
