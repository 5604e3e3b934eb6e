"""The warehouse: the one way the pipeline reads and writes tables, on DuckDB or PostgreSQL.

`LEADSCORE_WAREHOUSE` picks the engine: `duckdb` (the embedded default, a file in the data
directory) or `postgres` (a database given by `LEADSCORE_POSTGRES_*`). dbt builds its models on the
same engine (its `duckdb` or `postgres` target, dbt_project/profiles.yml). Everything else that
touches a table goes through this small interface, so switching engines is configuration:

- `fetch_all(sql)`, `fetch_one(sql)`, `fetch_arrow(sql)`: a query's rows, as tuples or as an
  Arrow table with the engine's column types;
- `write_tables(replace={"schema.table": rows}, append={...})`: replace whole tables with Arrow
  rows and append rows to others (creating them if needed), all in one transaction: readers see
  every table as it was or every table as written, never a mix (`replace_tables(...)` for short);
- `staging()` and `replace_from_staging(staging, {"schema.table": query})`: check incoming data in
  a DuckDB connection first (for DuckDB, the warehouse's own; for PostgreSQL, a private in-memory
  one), then replace tables with the queries' results in one transaction (for PostgreSQL, with
  COPY).

Queries passed in are plain SQL that both engines accept (`select`, `count`, `sum`, `order by`).
Connections are short-lived: DuckDB allows one writer per file, and nothing here keeps it open
between calls.
"""

from __future__ import annotations

import io
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv

from leadscore_assets.settings import PipelineSettings

Rows = pa.Table | pa.RecordBatchReader
# A table to write: its rows (produced when its turn comes) and whether they are appended.
_Write = tuple[Callable[[], Rows], bool]


def _split(table: str) -> tuple[str, str]:
    schema, _, name = table.rpartition(".")
    if not schema:
        raise ValueError(f"{table!r}: name tables as schema.table")
    return schema, name


def _reader(rows: Rows) -> pa.RecordBatchReader:
    return rows if isinstance(rows, pa.RecordBatchReader) else rows.to_reader()


class Warehouse(ABC):
    """Tables by qualified name (`schema.table`) on one database engine."""

    kind: str

    @property
    @abstractmethod
    def description(self) -> str:
        """Where the warehouse is, for logs and metadata (never a password)."""

    @abstractmethod
    def connect(self) -> AbstractContextManager[Any]:
        """A short-lived connection of the engine's own driver (DuckDB's, psycopg's)."""

    def fetch_all(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a (small) query."""
        with self.connect() as conn:
            return conn.execute(sql).fetchall()

    def fetch_one(self, sql: str) -> tuple[Any, ...]:
        rows = self.fetch_all(sql)
        return rows[0] if rows else ()

    @abstractmethod
    def fetch_arrow(self, sql: str) -> pa.Table:
        """The rows of a query as an Arrow table, with the engine's column types."""

    @abstractmethod
    def _write(self, tables: Mapping[str, _Write]) -> dict[str, int]:
        """Write every table, all in one transaction; returns each table's row count after."""

    def write_tables(
        self, replace: Mapping[str, Rows] | None = None, append: Mapping[str, Rows] | None = None
    ) -> dict[str, int]:
        """Replace the `replace` tables with their rows and append rows to the `append` tables
        (created with the rows' columns when missing), all in one transaction; returns how many
        rows each table has now."""
        plan: dict[str, _Write] = {}
        for is_append, tables in ((False, replace or {}), (True, append or {})):
            for table, rows in tables.items():
                plan[table] = ((lambda rows=rows: rows), is_append)
        return self._write(plan)

    def replace_tables(self, tables: Mapping[str, Rows]) -> dict[str, int]:
        """`write_tables(replace=tables)`."""
        return self.write_tables(replace=tables)

    @contextmanager
    def staging(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A private in-memory DuckDB to read and check incoming data in (it spills to a
        temporary folder when the data outgrows memory). Stage in TEMP tables: the DuckDB
        warehouse stages in its own connection, where anything else would be persisted."""
        with (
            tempfile.TemporaryDirectory(prefix="leadscore-staging-") as spill,
            duckdb.connect(config={"temp_directory": spill}) as conn,
        ):
            yield conn

    def replace_from_staging(
        self, staging: duckdb.DuckDBPyConnection, queries: Mapping[str, str]
    ) -> dict[str, int]:
        """Replace every `schema.table` with the result of its query on the `staging`
        connection, all in one transaction; returns each table's row count."""
        # A result the caller left partly read would block the queries below.
        staging.complete()
        return self._write(
            {
                t: ((lambda sql=sql: staging.sql(sql).to_arrow_reader()), False)
                for t, sql in queries.items()
            }
        )


class DuckDBWarehouse(Warehouse):
    """The embedded default: one DuckDB file, opened per call."""

    kind = "duckdb"

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def description(self) -> str:
        return str(self.path)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(self.path)) as conn:
            yield conn

    def fetch_arrow(self, sql: str) -> pa.Table:
        with self.connect() as conn:
            return conn.sql(sql).to_arrow_table()

    @contextmanager
    def _transaction(self, conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
        conn.execute("BEGIN TRANSACTION")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _write(self, tables: Mapping[str, _Write]) -> dict[str, int]:
        counts = {}
        with self.connect() as conn, self._transaction(conn):
            for table, (rows, append) in tables.items():
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_split(table)[0]}")
                reader = _reader(rows())
                conn.register("incoming_rows", reader)
                if append:
                    # Created from the columns alone: a reader's rows can be read only once.
                    conn.register("incoming_columns", reader.schema.empty_table())
                    conn.execute(f"CREATE TABLE IF NOT EXISTS {table} AS FROM incoming_columns")
                    conn.unregister("incoming_columns")
                    conn.execute(f"INSERT INTO {table} BY NAME FROM incoming_rows")
                else:
                    conn.execute(f"CREATE OR REPLACE TABLE {table} AS FROM incoming_rows")
                conn.unregister("incoming_rows")
                counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return counts

    @contextmanager
    def staging(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The warehouse's own connection: staged TEMP tables become raw tables without leaving
        DuckDB."""
        with self.connect() as conn:
            yield conn

    def replace_from_staging(
        self, staging: duckdb.DuckDBPyConnection, queries: Mapping[str, str]
    ) -> dict[str, int]:
        with self._transaction(staging):
            for table, sql in queries.items():
                staging.execute(f"CREATE SCHEMA IF NOT EXISTS {_split(table)[0]}")
                staging.execute(f"CREATE OR REPLACE TABLE {table} AS {sql}")
        return {
            table: staging.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in queries
        }


# How columns cross between Arrow and PostgreSQL: (Arrow type, PostgreSQL type as `format_type`
# spells it, the type's OID).
_TYPES = (
    (pa.int64(), "bigint", 20),
    (pa.int32(), "integer", 23),
    (pa.int16(), "smallint", 21),
    (pa.float64(), "double precision", 701),
    (pa.float32(), "real", 700),
    (pa.bool_(), "boolean", 16),
    (pa.string(), "text", 25),
    (pa.date32(), "date", 1082),
    (pa.timestamp("us"), "timestamp without time zone", 1114),
    (pa.timestamp("us", tz="UTC"), "timestamp with time zone", 1184),
)
# Read back: the OIDs above, plus varchar and char; numeric apart (its scale comes with the column).
_ARROW_TYPES = {oid: arrow_type for arrow_type, _, oid in _TYPES} | {
    1042: pa.string(),
    1043: pa.string(),
}


def _postgres_type(arrow_type: pa.DataType) -> str:
    """The PostgreSQL column type for an Arrow type."""
    if pa.types.is_decimal(arrow_type):
        return f"numeric({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_timestamp(arrow_type):
        arrow_type = pa.timestamp("us", tz="UTC" if arrow_type.tz else None)
    elif pa.types.is_large_string(arrow_type):
        arrow_type = pa.string()
    elif pa.types.is_int8(arrow_type):
        arrow_type = pa.int16()
    for known, name, _ in _TYPES:
        if arrow_type == known:
            return name
    raise TypeError(f"no PostgreSQL column type for Arrow type {arrow_type}")


_NUMERIC_OID = 1700
# Every session: timestamps in UTC and ISO form, floats in their shortest exact form, so that
# values moved as text parse to exactly the values stored.
_SESSION_SETTINGS = (
    "SET TimeZone TO 'UTC'",
    "SET DateStyle TO 'ISO'",
    "SET extra_float_digits TO 1",
)
_CSV_WRITE = pa_csv.WriteOptions(include_header=False, quoting_style="needed")


class PostgresWarehouse(Warehouse):
    """A PostgreSQL database. Bulk data moves with COPY as CSV (Arrow writes and parses it),
    never row by row; every write is one transaction."""

    kind = "postgres"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        user: str,
        password: str,
        database: str,
        sslmode: str = "prefer",
    ):
        self.connection_kwargs = {
            "host": host,
            "port": port,
            "user": user,
            "password": password,
            "dbname": database,
            "sslmode": sslmode,
            "application_name": "leadscore",
        }

    @property
    def description(self) -> str:
        c = self.connection_kwargs
        return f"postgresql://{c['user']}@{c['host']}:{c['port']}/{c['dbname']}"

    @contextmanager
    def connect(self):
        """A psycopg connection whose block is one transaction, committed if it succeeds."""
        import psycopg

        with psycopg.connect(**self.connection_kwargs) as conn:
            for statement in _SESSION_SETTINGS:
                conn.execute(statement)
            yield conn

    def fetch_arrow(self, sql: str) -> pa.Table:
        with self.connect() as conn:
            cursor = conn.execute(f"SELECT * FROM ({sql}) AS query LIMIT 0")
            schema = pa.schema((c.name, self._arrow_type(c)) for c in cursor.description)
            text = io.BytesIO()
            with cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy:
                for chunk in copy:
                    text.write(chunk)
        if not text.tell():
            return schema.empty_table()
        text.seek(0)
        return pa_csv.read_csv(
            text,
            read_options=pa_csv.ReadOptions(column_names=schema.names),
            parse_options=pa_csv.ParseOptions(newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=schema,
                true_values=["t"],
                false_values=["f"],
                # NULL is an empty unquoted field; "" is an empty string.
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                timestamp_parsers=["%Y-%m-%d %H:%M:%S%z", pa_csv.ISO8601],
            ),
        )

    @staticmethod
    def _arrow_type(column) -> pa.DataType:
        if column.type_code == _NUMERIC_OID:
            if column.precision is None:
                return pa.float64()
            return pa.decimal128(column.precision, column.scale)
        try:
            return _ARROW_TYPES[column.type_code]
        except KeyError:
            raise TypeError(
                f"column {column.name}: no Arrow type for PostgreSQL type oid {column.type_code}"
            ) from None

    @staticmethod
    def _columns(conn, table: str) -> list[tuple[str, str]]:
        return conn.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum",
            (table,),
        ).fetchall()

    def _prepare_table(self, conn, table: str, schema: pa.Schema, append: bool) -> None:
        """Make `table` an empty table (or, to append, an existing one) with `schema`'s columns.

        A table whose columns already match is emptied with TRUNCATE, which keeps the views that
        read it (PostgreSQL binds a view to its tables: dbt's staging views on `raw.*`). A table
        with other columns is dropped together with its views, which dbt creates again.
        """
        wanted = [(field.name, _postgres_type(field.type)) for field in schema]
        existing = self._columns(conn, table)
        if existing == wanted:
            if not append:
                conn.execute(f"TRUNCATE {table}")
            return
        if existing and append:
            raise ValueError(f"{table} has columns {existing}; the rows have {wanted}")
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_split(table)[0]}")
        conn.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
        columns = ", ".join(f'"{name}" {sql_type}' for name, sql_type in wanted)
        conn.execute(f"CREATE TABLE {table} ({columns})")

    @staticmethod
    def _copy_in(conn, table: str, reader: pa.RecordBatchReader) -> None:
        columns = ", ".join(f'"{name}"' for name in reader.schema.names)
        with conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
            for batch in reader:
                text = io.BytesIO()
                pa_csv.write_csv(batch, text, write_options=_CSV_WRITE)
                copy.write(text.getvalue())

    def _write(self, tables: Mapping[str, _Write]) -> dict[str, int]:
        counts = {}
        with self.connect() as conn:
            for table, (rows, append) in tables.items():
                reader = _reader(rows())
                self._prepare_table(conn, table, reader.schema, append)
                self._copy_in(conn, table, reader)
                counts[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return counts


def warehouse_for(settings: PipelineSettings) -> Warehouse:
    """The warehouse `LEADSCORE_WAREHOUSE` names, connected as the settings say."""
    if settings.warehouse == "postgres":
        return PostgresWarehouse(
            host=settings.postgres_host,
            port=settings.postgres_port,
            user=settings.postgres_user,
            password=settings.postgres_password.get_secret_value(),
            database=settings.postgres_database,
            sslmode=settings.postgres_sslmode,
        )
    return DuckDBWarehouse(settings.warehouse_path)
