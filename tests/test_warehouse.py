"""The warehouse interface on both engines (a DuckDB file, a real PostgreSQL database): values
survive the round trip exactly, writes are all or nothing, and readers' views are kept."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from leadscore_assets.settings import PipelineSettings
from leadscore_assets.warehouse import DuckDBWarehouse, PostgresWarehouse, warehouse_for

UTC = dt.UTC


def _awkward_rows() -> pa.Table:
    """Values a text transfer could bend: NULL next to empty strings, quotes, commas and newlines,
    doubles at the edges of their range, microsecond timestamps, exact decimals."""
    doubles = [0.1, 1 / 3, 5e-324, 1.7976931348623157e308, -0.0, 123456789.123456789, None]
    n = len(doubles)
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "small": pa.array([-(2**31), 2**31 - 1, 0, 1, -1, 7, None], pa.int32()),
            "value": pa.array(doubles, pa.float64()),
            "text": pa.array(["", None, 'say "hi", then\nleave', "Ünïcode", " ", "t", "NULL"]),
            "flag": pa.array([True, False, None, True, False, True, False]),
            "at": pa.array(
                [dt.datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=UTC)] * (n - 1) + [None],
                pa.timestamp("us", tz="UTC"),
            ),
            "amount": pa.array(
                [Decimal("12.345678"), None, *[Decimal("-0.000001")] * 5], pa.decimal128(18, 6)
            ),
        }
    )


def _same(expected: pa.Table, actual: pa.Table) -> None:
    assert actual.column_names == expected.column_names
    for name in expected.column_names:
        want, got = expected[name], actual[name].cast(expected[name].type)
        if pa.types.is_floating(want.type):  # bit for bit: -0.0 and the smallest subnormal too
            bits = [np.asarray(c.to_numpy(zero_copy_only=False)) for c in (want, got)]
            assert np.array_equal(bits[0].view(np.int64), bits[1].view(np.int64)), name
            assert want.is_null().equals(got.is_null()), name
        else:
            assert got.equals(want), name


def test_values_come_back_exactly(warehouse):
    rows = _awkward_rows()
    assert warehouse.replace_tables({"raw.awkward": rows}) == {"raw.awkward": rows.num_rows}
    _same(rows, warehouse.fetch_arrow("SELECT * FROM raw.awkward ORDER BY id"))
    assert warehouse.fetch_one("SELECT count(*), count(text) FROM raw.awkward") == (7, 6)
    empty = warehouse.fetch_arrow("SELECT * FROM raw.awkward WHERE id < 0")
    assert empty.num_rows == 0 and empty.column_names == rows.column_names


def _failing_after_one_batch(rows: pa.Table) -> pa.RecordBatchReader:
    def batches():
        yield rows.to_batches()[0]
        raise RuntimeError("the source broke mid-way")

    return pa.RecordBatchReader.from_batches(rows.schema, batches())


def test_a_failing_replace_changes_no_table(warehouse):
    first = pa.table({"id": pa.array([1, 2, 3], pa.int64())})
    second = pa.table({"id": pa.array([10], pa.int64()), "note": ["x"]})
    warehouse.replace_tables({"raw.first": first, "raw.second": second})
    with pytest.raises(Exception, match="broke mid-way"):
        warehouse.replace_tables(
            {
                "raw.first": pa.table({"id": pa.array([7], pa.int64())}),
                "raw.second": _failing_after_one_batch(second),
            }
        )
    assert warehouse.fetch_all("SELECT id FROM raw.first ORDER BY id") == [(1,), (2,), (3,)]
    assert warehouse.fetch_all("SELECT id, note FROM raw.second") == [(10, "x")]


def _batches(rows: pa.Table, size: int = 1) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches(max_chunksize=size))


def test_append_creates_then_adds_in_the_same_transaction_as_replacing(warehouse):
    latest = pa.table({"id": pa.array([1, 2], pa.int64()), "score": [0.25, 0.5]})
    counts = warehouse.write_tables(
        replace={"marts.latest": latest}, append={"marts.history": _batches(latest)}
    )
    assert counts == {"marts.latest": 2, "marts.history": 2}
    warehouse.write_tables(
        replace={"marts.latest": latest.slice(0, 1)}, append={"marts.history": latest.slice(0, 1)}
    )
    assert warehouse.fetch_all("SELECT id, score FROM marts.latest") == [(1, 0.25)]
    history = [(1, 0.25), (1, 0.25), (2, 0.5)]
    assert warehouse.fetch_all("SELECT id, score FROM marts.history ORDER BY id") == history
    with pytest.raises(Exception, match="broke mid-way"):
        warehouse.write_tables(
            replace={"marts.latest": latest},
            append={"marts.history": _failing_after_one_batch(latest)},
        )
    assert warehouse.fetch_all("SELECT id, score FROM marts.latest") == [(1, 0.25)]
    assert warehouse.fetch_all("SELECT id, score FROM marts.history ORDER BY id") == history


@pytest.mark.postgres
def test_postgres_replace_keeps_the_views_that_read_a_table(postgres_warehouse):
    """PostgreSQL binds a view to its table (DuckDB resolves it by name when read): replacing
    rows must not drop dbt's staging views; a change of columns drops them (dbt builds them
    again)."""
    warehouse = postgres_warehouse
    rows = pa.table({"id": pa.array([1, 2], pa.int64())})
    warehouse.replace_tables({"raw.source": rows})
    with warehouse.connect() as conn:
        conn.execute("CREATE SCHEMA staging")
        conn.execute("CREATE VIEW staging.reader AS SELECT id FROM raw.source")
    warehouse.replace_tables({"raw.source": rows.slice(0, 1)})
    assert warehouse.fetch_all("SELECT id FROM staging.reader") == [(1,)]
    warehouse.replace_tables({"raw.source": rows.append_column("more", pa.array(["a", "b"]))})
    assert warehouse.fetch_all("SELECT viewname FROM pg_views WHERE schemaname = 'staging'") == []


def test_the_setting_picks_the_engine(tmp_path):
    assert isinstance(warehouse_for(PipelineSettings(data_dir=tmp_path)), DuckDBWarehouse)
    postgres = warehouse_for(
        PipelineSettings(
            data_dir=tmp_path,
            warehouse="postgres",
            postgres_host="db.internal",
            postgres_password="secret",
            postgres_database="crm",
        )
    )
    assert isinstance(postgres, PostgresWarehouse)
    assert postgres.description == "postgresql://leadscore@db.internal:5432/crm"
    assert "secret" not in postgres.description
