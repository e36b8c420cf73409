"""Size and shape limits of what the DAG store may hold: one place, read by the sidecar and the publisher.

One sidecar process serves every package of an env with a 192Mi memory limit (the chart:
infra/airflow_control_plane/values.yaml), so nothing one package writes may make it read or build
more than a bounded amount: ``metadata.json`` is size-capped and its shape is counted by
``check_json_shape`` *before* ``json.loads`` builds anything, a release bundle is capped by what its
listed files can take up as a tar, and a tar header may not announce more than a small pax record.
Before these limits a 60 MiB ``metadata.json`` of nested empty lists took the sidecar to 1.6 GiB and
a bundle with a 100 MiB pax header to 516 MiB.

The publisher checks what it is about to write with ``check_metadata_document`` and
``bundle_size_bound`` and refuses a release over any of these limits, so a release it writes is
never rejected by the sidecar for them: one definition, here. docs/store-layout.md ("Limits")
gives the measured sizes behind each number.
"""

from __future__ import annotations

import dataclasses
import re

from tools.bazel.storecontract.errors import ContractError

__all__ = [
    "BUNDLE_MAX_BYTES",
    "DAG_FILE_MAX_BYTES",
    "JSON_MAX_CONTAINER_ITEMS",
    "JSON_MAX_DEPTH",
    "JSON_MAX_STRING_BYTES",
    "JSON_MAX_VALUES",
    "MAX_DAGS",
    "METADATA_MAX_BYTES",
    "PAX_HEADER_MAX_BYTES",
    "RELEASE_MAX_BYTES",
    "JsonShape",
    "LimitError",
    "bundle_size_bound",
    "check_json_shape",
    "check_metadata_bytes",
    "check_metadata_document",
    "check_release_sizes",
]

METADATA_MAX_BYTES = 2 * 1024 * 1024
"""Largest ``metadata.json``. A rendered entry takes about 540 bytes for a one-task DAG and 770 bytes
for two tasks (2 KiB at ten tasks), so MAX_DAGS two-task DAGs need 1.5 MiB."""

MAX_DAGS = 2000
"""Most DAGs one package's release may list."""

JSON_MAX_DEPTH = 10
"""Deepest nesting of arrays and objects in ``metadata.json``: the schema needs 6
(document > dags > entry > resources > task > requests)."""

JSON_MAX_CONTAINER_ITEMS = MAX_DAGS
"""Most items in one array or members in one object (the ``dags`` array is the longest)."""

JSON_MAX_VALUES = 150_000
"""Most JSON values (strings, numbers, literals, arrays, objects; an object member's key counts) in
``metadata.json``. A two-task DAG's entry has 45, a five-task one 90: MAX_DAGS two-task DAGs need
90,000. The cap bounds what ``json.loads`` may build: 150,000 empty arrays are about 10 MiB."""

JSON_MAX_STRING_BYTES = 1024
"""Longest JSON string, as encoded (a dag_id is at most 250 characters, an image reference ~300)."""

DAG_FILE_MAX_BYTES = 5 * 1024 * 1024
"""Largest DAG file: the default of the sidecar's ``--max-file-bytes``; the publisher refuses bigger."""

RELEASE_MAX_BYTES = 128 * 1024 * 1024
"""Most bytes of DAG files one release may hold (their sizes listed in ``metadata.json`` summed)."""

PAX_HEADER_MAX_BYTES = 1024
"""Largest pax extended header in a bundle. The publisher writes one only for a member name over 100
bytes, with one ``path`` record: ``dags/<dag_id>.py`` with a 250-character dag_id is a 270-byte record."""

_TAR_BLOCK = 512
_TAR_RECORD = 10240

BUNDLE_MAX_BYTES = 0  # set below from the other limits: the bound for MAX_DAGS files of RELEASE_MAX_BYTES


class LimitError(ContractError):
    """A document or object is over one of the store's limits; ``kind`` names it
    (``metadata_too_large``, ``metadata_too_complex``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _blocks(size: int) -> int:
    return -(-size // _TAR_BLOCK) * _TAR_BLOCK


def bundle_size_bound(sizes: list[int]) -> int:
    """Most bytes a release bundle of files with these ``sizes`` can have (docs/store-layout.md).

    Per member: its header block, a pax header (header block + at most PAX_HEADER_MAX_BYTES) and
    its data padded to whole blocks; then the two end-of-archive blocks, all padded to a whole
    10240-byte record, as the publisher's tar writer does.
    """
    total = sum(_TAR_BLOCK + _TAR_BLOCK + _blocks(PAX_HEADER_MAX_BYTES) + _blocks(size) for size in sizes)
    total += 2 * _TAR_BLOCK
    return -(-total // _TAR_RECORD) * _TAR_RECORD


BUNDLE_MAX_BYTES = bundle_size_bound([RELEASE_MAX_BYTES]) + MAX_DAGS * (2 * _TAR_BLOCK + _blocks(PAX_HEADER_MAX_BYTES))


def check_metadata_bytes(size: int, *, where: str) -> None:
    """Raise LimitError (``metadata_too_large``) if a ``metadata.json`` of ``size`` bytes is too big."""
    if size > METADATA_MAX_BYTES:
        raise LimitError(
            "metadata_too_large",
            f"{where!r} is {size} bytes, more than the {METADATA_MAX_BYTES} allowed for metadata.json "
            f"(storecontract/limits.py METADATA_MAX_BYTES); split the package",
        )


@dataclasses.dataclass(frozen=True)
class JsonShape:
    """What ``check_json_shape`` counted in an accepted document."""

    depth: int
    values: int
    longest_container: int
    longest_string: int


# One token: a whole string (escapes included), a bracket, a comma, or a run of other
# characters (a number or a literal). Colons and white space are skipped.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]|[^\s"\[\]{},:]+', re.DOTALL)


def check_json_shape(data: bytes, *, where: str) -> JsonShape:
    """Count the shape of the JSON text ``data`` without building it; raise LimitError if over a limit.

    One pass of a tokenizer over the bytes (no object is created per value): nesting depth
    (JSON_MAX_DEPTH), items per array or members per object (JSON_MAX_CONTAINER_ITEMS), values in
    all (JSON_MAX_VALUES) and string length (JSON_MAX_STRING_BYTES). It checks the shape only: text
    that is not JSON passes here and fails in ``json.loads``, which then builds at most what was
    counted. ``kind`` of the error is ``metadata_too_complex``.
    """
    depth = max_depth = 0
    values = longest_container = longest_string = 0
    stack: list[int] = []  # items seen so far in each open container (commas + 1 once non-empty)
    open_at: list[int] = []

    def fail(what: str, offset: int) -> LimitError:
        return LimitError("metadata_too_complex", f"{where!r}: {what} at byte {offset}; split the package")

    for match in _TOKEN.finditer(data):
        token = match.group()
        head = token[:1]
        if head in (b"]", b"}"):
            if stack:
                longest_container = max(longest_container, stack.pop())
                open_at.pop()
                depth -= 1
            continue
        if head == b",":
            if stack:
                stack[-1] += 1  # an object's members are separated by commas too: members, not keys
                if stack[-1] > JSON_MAX_CONTAINER_ITEMS:
                    raise fail(
                        f"an array or object (opened at byte {open_at[-1]}) has more than "
                        f"{JSON_MAX_CONTAINER_ITEMS} items (storecontract/limits.py JSON_MAX_CONTAINER_ITEMS)",
                        match.start(),
                    )
            continue
        values += 1  # a string, number, literal, array or object
        if values > JSON_MAX_VALUES:
            raise fail(f"more than {JSON_MAX_VALUES} values (storecontract/limits.py JSON_MAX_VALUES)", match.start())
        if stack and stack[-1] == 0:
            stack[-1] = 1
        if head == b'"':
            length = len(token) - 2
            if length > JSON_MAX_STRING_BYTES:
                raise fail(
                    f"a string of {length} bytes is longer than {JSON_MAX_STRING_BYTES} "
                    "(storecontract/limits.py JSON_MAX_STRING_BYTES)",
                    match.start(),
                )
            longest_string = max(longest_string, length)
        elif head in (b"[", b"{"):
            depth += 1
            if depth > JSON_MAX_DEPTH:
                raise fail(
                    f"nesting is deeper than {JSON_MAX_DEPTH} (storecontract/limits.py JSON_MAX_DEPTH)", match.start()
                )
            max_depth = max(max_depth, depth)
            stack.append(0)
            open_at.append(match.start())
    return JsonShape(depth=max_depth, values=values, longest_container=longest_container, longest_string=longest_string)


def check_metadata_document(data: bytes, *, where: str, dag_sizes: list[int] | None = None) -> JsonShape:
    """Every limit a ``metadata.json`` must respect, on its bytes: size, shape and, with the
    listed files' ``dag_sizes``, MAX_DAGS, DAG_FILE_MAX_BYTES and RELEASE_MAX_BYTES.

    The publisher calls it on what it is about to write, the sidecar on what it read, before
    ``json.loads``. Raises LimitError naming ``where``, the limit and its value.
    """
    check_metadata_bytes(len(data), where=where)
    if dag_sizes is not None:  # first: "2001 DAGs" says more than "an array of more than 2000 items"
        check_release_sizes(dag_sizes, where=where)
    return check_json_shape(data, where=where)


def check_release_sizes(dag_sizes: list[int], *, where: str) -> None:
    """Raise LimitError (``metadata_too_complex``) if a release lists too many or too big DAG files."""
    if len(dag_sizes) > MAX_DAGS:
        raise LimitError(
            "metadata_too_complex",
            f"{where!r} lists {len(dag_sizes)} DAGs, more than the {MAX_DAGS} "
            "a release may have (storecontract/limits.py MAX_DAGS); split the package",
        )
    biggest = max(dag_sizes, default=0)
    if biggest > DAG_FILE_MAX_BYTES:
        raise LimitError(
            "metadata_too_complex",
            f"{where!r} lists a DAG file of {biggest} bytes, more than the "
            f"{DAG_FILE_MAX_BYTES} allowed (storecontract/limits.py DAG_FILE_MAX_BYTES)",
        )
    total = sum(dag_sizes)
    if total > RELEASE_MAX_BYTES:
        raise LimitError(
            "metadata_too_complex",
            f"{where!r} lists {total} bytes of DAG files, more than the "
            f"{RELEASE_MAX_BYTES} a release may have (storecontract/limits.py RELEASE_MAX_BYTES); "
            "split the package",
        )
