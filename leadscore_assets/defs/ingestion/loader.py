"""Landing files -> the warehouse's schema `raw`, all or nothing.

Every file is read and type-checked in DuckDB before anything is replaced; the raw tables are then
swapped in one warehouse transaction (on DuckDB, or on PostgreSQL by COPY: leadscore_assets/
warehouse.py), so a bad file leaves the previously loaded data exactly as it was. When several
files hold the same key (a re-export), the newest file wins.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from leadscore_assets.defs.ingestion.folder import (
    LandingFile,
    LandingFileError,
    tables_without_files,
)
from leadscore_assets.defs.ingestion.schema import (
    DEAL_STAGES,
    LANDING_SCHEMA,
    LANDING_TABLES,
    PRIMARY_KEYS,
    RAW_SCHEMA,
    Column,
)
from leadscore_assets.warehouse import Warehouse
from leadscore_core.features import MAX_ID_LENGTH

INTEGER_TYPES = ("BIGINT", "INTEGER")
# Ids (schema.Column.identifier): a whole number written with a decimal point, as a spreadsheet
# or a float column renders it (`1042.0`), is the id `1042`; a fraction is refused, never rounded.
_WHOLE_NUMBER_WITH_POINT = r"[0-9]+\.0*"
_FRACTION = r"[0-9]*\.[0-9]*[1-9][0-9]*"
CSV_DELIMITERS = ",;\t|"
CONFLICT_EXAMPLES = 3  # example keys or values a rejection quotes
EMPTY = "empty"
_RAGGED_ROW = re.compile(
    r"CSV Error on Line: (\d+).*?Expected Number of Columns: (\d+) Found: (\d+)", re.DOTALL
)


def _csv_columns(path: Path) -> tuple[list[str], str]:
    """The header's column names and the delimiter, read with Python's csv module.

    DuckDB's sniffer guesses the dialect from sampled rows; one short row (a truncated upload)
    makes it read the whole file as one column, which then looks like missing columns. The
    dialect is taken from the header line instead and every row is held to it.
    """
    if path.stat().st_size == 0:
        raise LandingFileError(path, "is empty (0 bytes): expected a header row and data rows")
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
            first_line = handle.readline()
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise LandingFileError(path, f"unreadable: {exc}") from None
    if not first_line.strip():
        raise LandingFileError(path, "has no header row")
    try:
        delimiter = csv.Sniffer().sniff(first_line, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        delimiter = ","
    header = next(csv.reader([first_line], delimiter=delimiter))
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise LandingFileError(path, f"the header names column(s) {', '.join(repeated)} twice")
    return header, delimiter


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _reader(path: Path) -> str:
    if path.name.endswith(".parquet"):
        return f"read_parquet({_sql_text(str(path))})"
    header, delimiter = _csv_columns(path)
    columns = ", ".join(f"{_sql_text(name)}: 'VARCHAR'" for name in header)
    return (
        f"read_csv({_sql_text(str(path))}, columns = {{{columns}}}, header = true, "
        f"auto_detect = false, delim = {_sql_text(delimiter)}, quote = '\"', escape = '\"', "
        "strict_mode = true, null_padding = false)"
    )


def _read_problem(error: duckdb.Error) -> str:
    """DuckDB's reading error, in the file's terms."""
    text = str(error)
    ragged = _RAGGED_ROW.search(text)
    if ragged:
        line, expected, found = ragged.groups()
        return (
            f"line {line} has {found} field(s) but the header has {expected} "
            "(a truncated upload, or a delimiter inside an unquoted value?)"
        )
    return f"unreadable: {text.splitlines()[0]}"


def _quoted_example(value: str) -> str:
    """A bad value as a rejection quotes it: in quotes, shortened when long."""
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _id_text(source: str) -> str:
    """SQL for an id as the warehouse keeps it: trimmed text, `1042.0` as `1042`, empty as NULL."""
    text = f"trim(CAST({source} AS VARCHAR))"
    return (
        f"CASE WHEN regexp_full_match({text}, '{_WHOLE_NUMBER_WITH_POINT}') "
        f"THEN regexp_extract({text}, '^[0-9]+') ELSE nullif({text}, '') END"
    )


def _id_checks(column: Column, source: str) -> list[tuple[Column, str, str]]:
    text = f"trim(CAST({source} AS VARCHAR))"
    return [
        (
            column,
            f"regexp_full_match({text}, '{_FRACTION}')",
            "not a whole number (a fraction is not an id, and ids are never rounded)",
        ),
        (
            column,
            f"length({_id_text(source)}) > {MAX_ID_LENGTH}",
            f"longer than {MAX_ID_LENGTH} characters",
        ),
        (column, f"{_id_text(source)} IS NULL", EMPTY),
    ]


def _typed(column: Column, present: Mapping[str, str]) -> str:
    if column.name not in present:
        return f"CAST(NULL AS {column.duckdb_type}) AS {column.name}"
    source = f'"{present[column.name]}"'
    if column.identifier:
        return f"{_id_text(source)} AS {column.name}"
    return f"CAST({source} AS {column.duckdb_type}) AS {column.name}"


def _value_checks(
    columns: Sequence[Column], present: Mapping[str, str], table: str
) -> list[tuple[Column, str, str]]:
    """(column, SQL condition true for a bad value, what is wrong with it) for every present
    column."""
    checks = []
    for column in columns:
        if column.name not in present:
            continue
        source = f'"{present[column.name]}"'
        if column.identifier:
            checks.extend(_id_checks(column, source))
            continue
        checks.append(
            (
                column,
                f"{source} IS NOT NULL AND TRY_CAST({source} AS {column.duckdb_type}) IS NULL",
                "not a valid " + column.duckdb_type,
            )
        )
        if column.duckdb_type in INTEGER_TYPES:
            # Casting rounds 2.5 (text or a Parquet double) to 3: an id must not change.
            number = f"TRY_CAST({source} AS DOUBLE)"
            checks.append(
                (
                    column,
                    f"{number} IS NOT NULL AND {number} <> trunc({number})",
                    "not a whole number",
                )
            )
        if column.not_null:
            checks.append((column, f"{source} IS NULL", EMPTY))
    if table == "crm_deals":
        stages = ", ".join(_sql_text(s) for s in DEAL_STAGES.all())
        checks.append(
            (
                next(c for c in columns if c.name == "stage"),
                f'"{present["stage"]}" NOT IN ({stages})',
                f"not one of {', '.join(DEAL_STAGES.all())}",
            )
        )
    return checks


def _reject_conflicting_keys(
    conn: duckdb.DuckDBPyConnection, file: LandingFile, staged_name: str
) -> None:
    """A key may appear once per file: two different rows for it leave no way to tell which is
    current (across files, the newest file wins)."""
    keys = PRIMARY_KEYS[file.table]
    key_list = ", ".join(keys)
    found = conn.execute(
        f"SELECT {key_list}, count(*) OVER () FROM {staged_name} GROUP BY {key_list} "
        f"HAVING count(*) > 1 ORDER BY {key_list} LIMIT {CONFLICT_EXAMPLES}"
    ).fetchall()
    if found:
        examples = ", ".join(
            ", ".join(f"{key}={value}" for key, value in zip(keys, row, strict=False))
            for row in found
        )
        raise LandingFileError(
            file.path,
            f"{found[0][-1]} key(s) appear more than once with different values, e.g. "
            f"{examples}; each key may appear once per file (put a re-export in a new file: "
            "the newest file wins)",
        )


def _stage_file(conn: duckdb.DuckDBPyConnection, file: LandingFile, staged_name: str) -> int:
    """Copy one file into a temp table of typed, distinct rows, or raise LandingFileError saying
    why. Returns how many exact duplicate rows were dropped."""
    try:
        conn.execute(f"CREATE TEMP TABLE {staged_name}_text AS SELECT * FROM {_reader(file.path)}")
    except duckdb.Error as exc:
        raise LandingFileError(file.path, _read_problem(exc)) from None
    present = {
        row[0].lower(): row[0] for row in conn.execute(f"DESCRIBE {staged_name}_text").fetchall()
    }
    columns = LANDING_SCHEMA[file.table]
    missing = [c.name for c in columns if c.required and c.name not in present]
    if missing:
        raise LandingFileError(
            file.path, f"missing required column(s) {', '.join(missing)} for table {file.table}"
        )
    rows = conn.execute(f"SELECT count(*) FROM {staged_name}_text").fetchone()[0]
    if rows == 0:
        raise LandingFileError(file.path, "has a header but no rows")

    checks = _value_checks(columns, present, file.table)
    found = conn.execute(
        "SELECT "
        + ", ".join(
            f"count(*) FILTER (WHERE {bad}), "
            f'list_sort(list_distinct(list(CAST("{present[column.name]}" AS VARCHAR)) '
            f"FILTER (WHERE {bad})))[1:{CONFLICT_EXAMPLES}]"
            for column, bad, _ in checks
        )
        + f" FROM {staged_name}_text"
    ).fetchone()
    problems = [
        f"column {column.name}: {count} value(s) {what}"
        + ("" if what == EMPTY else ", e.g. " + ", ".join(map(_quoted_example, examples)))
        for (column, _, what), count, examples in zip(checks, found[::2], found[1::2], strict=True)
        if count
    ]
    if problems:
        raise LandingFileError(file.path, "; ".join(problems))

    typed = ", ".join(_typed(c, present) for c in columns)
    conn.execute(
        f"CREATE TEMP TABLE {staged_name} AS SELECT DISTINCT {typed}, "
        f"{_sql_text(file.path.name)} AS _source_file FROM {staged_name}_text"
    )
    conn.execute(f"DROP TABLE {staged_name}_text")
    _reject_conflicting_keys(conn, file, staged_name)
    return rows - conn.execute(f"SELECT count(*) FROM {staged_name}").fetchone()[0]


@dataclass(frozen=True)
class LandingLoad:
    """What a load did: rows per raw table, and exact duplicate rows dropped per file."""

    rows: dict[str, int]
    duplicate_rows: dict[str, int]


def _latest_rows(table: str, staged_names: Sequence[str]) -> str:
    """The table's rows from every staged file; later files (newer exports) win when a key
    appears more than once."""
    union = " UNION ALL ".join(
        f"SELECT *, {order} AS _file_order FROM {name}" for order, name in enumerate(staged_names)
    )
    keys = ", ".join(PRIMARY_KEYS[table])
    return (
        f"SELECT * EXCLUDE (_file_order) FROM ({union}) "
        f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY _file_order DESC) = 1"
    )


def _reject_deals_of_unknown_contacts(
    conn: duckdb.DuckDBPyConnection,
    staged: Mapping[str, Sequence[str]],
    files: Sequence[LandingFile],
) -> None:
    """Every deal must belong to a contact of the contacts exports. The first deals file whose
    rows (those its newer files do not replace) name an unknown contact id is rejected, quoting
    some of the ids: quarantined, it stops costing runs, where a failed dbt test on the loaded
    rows would fail every run until someone found the file."""
    contacts = _latest_rows("crm_contacts", staged["crm_contacts"])
    unknown = conn.execute(
        f"SELECT _source_file, count(DISTINCT contact_id), "
        f"list_sort(list_distinct(list(contact_id)))[1:{CONFLICT_EXAMPLES}] "
        f"FROM ({_latest_rows('crm_deals', staged['crm_deals'])}) AS deals "
        f"WHERE contact_id NOT IN (SELECT contact_id FROM ({contacts})) "
        "GROUP BY _source_file ORDER BY _source_file"
    ).fetchall()
    if unknown:
        name, count, examples = unknown[0]
        path = next(f.path for f in files if f.table == "crm_deals" and f.path.name == name)
        raise LandingFileError(
            path,
            f"column contact_id: {count} contact id(s) that no crm_contacts file has, e.g. "
            f"{', '.join(map(_quoted_example, examples))} (export those contacts too, or leave "
            "their deals out)",
        )


def load_landing(warehouse: Warehouse, files: Sequence[LandingFile]) -> LandingLoad:
    """Replace raw.<table> in the warehouse for every table from `files`.

    All files are read, staged and checked in DuckDB first (`Warehouse.staging`); the warehouse's
    raw tables are then replaced in one transaction. On any LandingFileError (a file that cannot
    be read or typed, or deals of contacts no contacts file has) nothing in the warehouse
    changes. Rows repeated exactly within a file are loaded once and counted; different
    rows for one key within a file reject the file.
    """
    empty = tables_without_files(files)
    if empty:
        raise ValueError(f"no landing file for table(s) {', '.join(empty)}")
    by_table: dict[str, list[LandingFile]] = {t: [] for t in LANDING_TABLES}
    for file in files:
        by_table[file.table].append(file)

    with warehouse.staging() as conn:
        staged: dict[str, list[str]] = {}
        duplicates: dict[str, int] = {}
        for table, table_files in by_table.items():
            staged[table] = []
            for index, file in enumerate(table_files):
                name = f"staged_{table}_{index}"
                dropped = _stage_file(conn, file, name)
                if dropped:
                    duplicates[file.path.name] = dropped
                staged[table].append(name)
        _reject_deals_of_unknown_contacts(conn, staged, files)
        rows = warehouse.replace_from_staging(
            conn,
            {
                f"{RAW_SCHEMA}.{table}": _latest_rows(table, names)
                for table, names in staged.items()
            },
        )
    return LandingLoad(
        {table: rows[f"{RAW_SCHEMA}.{table}"] for table in LANDING_TABLES}, duplicates
    )
