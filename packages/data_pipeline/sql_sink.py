"""Optional SQL sink: load a run's partition into a table with SQLAlchemy (SQLite by default).

The table gets the dataset's columns plus ``dt`` (the run date). A load deletes the rows of its
``dt`` and inserts the new ones in one transaction, so a re-run replaces the partition there too
and readers never see half of it. The table is created when missing. SQLAlchemy is imported only
when a sink URL is given.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from etl_core.logs import redact

from .errors import SqlSinkError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["load_partition"]

_TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_BATCH_ROWS = 10_000


def _sql_type(kind: pa.DataType) -> Any:
    import pyarrow as pa
    import sqlalchemy as sa

    if pa.types.is_int64(kind):
        return sa.BigInteger()
    if pa.types.is_integer(kind):
        return sa.Integer()
    if pa.types.is_floating(kind):
        return sa.Float()
    if pa.types.is_boolean(kind):
        return sa.Boolean()
    if pa.types.is_date(kind):
        return sa.Date()
    if pa.types.is_timestamp(kind):
        return sa.DateTime(timezone=kind.tz is not None)
    return sa.Text()


def load_partition(table: pa.Table, *, url: str, table_name: str, run_date: dt.date) -> int:
    """Replace the rows of ``run_date`` in ``table_name`` with ``table``'s; returns rows inserted."""
    if not _TABLE_RE.match(table_name):
        raise SqlSinkError(f"invalid SQL table name {table_name!r}: use letters, digits and '_'")
    import sqlalchemy as sa

    if "dt" in table.column_names:
        raise SqlSinkError("the data already has a column 'dt', which the SQL sink uses for the run date")
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise SqlSinkError(f"invalid --sql-url {redact(url)!r}: {exc}") from None
    metadata = sa.MetaData()
    columns = [sa.Column(f.name, _sql_type(f.type)) for f in table.schema]
    target = sa.Table(table_name, metadata, *columns, sa.Column("dt", sa.Date(), nullable=False, index=True))
    inserted = 0
    try:
        metadata.create_all(engine, checkfirst=True)
        with engine.begin() as conn:
            conn.execute(sa.delete(target).where(target.c.dt == run_date))
            for batch in table.to_batches(max_chunksize=_BATCH_ROWS):
                rows = batch.to_pylist()
                for row in rows:
                    row["dt"] = run_date
                if rows:
                    conn.execute(sa.insert(target), rows)
                    inserted += len(rows)
    except sa.exc.SQLAlchemyError as exc:
        message = str(exc).splitlines()[0]
        raise SqlSinkError(f"loading {table_name!r} at {redact(url)!r} failed: {message}") from None
    finally:
        engine.dispose()
    return inserted
