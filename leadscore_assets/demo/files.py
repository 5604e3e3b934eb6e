"""The demo data as landing files: written atomically, and remembered as synthetic so that a
model trained on them is marked as a demo model (and refused outside demo mode)."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

from leadscore_assets.defs.ingestion.schema import LANDING_TABLES
from leadscore_assets.demo.generator import SyntheticExport, generate


def write_landing(export: SyntheticExport, landing_dir: Path, batch: str = "") -> list[Path]:
    """Write the three exports as CSV files into `landing_dir`, each atomically (temp + rename)
    so that a sensor watching the folder never sees half a file under its final name."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    suffix = f"_{batch}" if batch else ""
    written = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for name, table in zip(
            LANDING_TABLES, (export.sessions, export.contacts, export.deals), strict=True
        ):
            target = landing_dir / f"{name}{suffix}.csv"
            partial = target.with_name(target.name + ".part")
            _write_csv(pool, table, partial)
            partial.replace(target)
            written.append(target)
    _record_generated(landing_dir, written)
    return written


# Rows per CSV chunk. Arrow formats one `write_csv` call on one thread (about 1 s per million
# session rows); chunks of a file are formatted on all cores and written in order, byte for byte
# the file one call would write.
CSV_CHUNK_ROWS = 250_000


def _csv_chunk(table: pa.Table, header: bool) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, write_options=pa_csv.WriteOptions(include_header=header))
    return sink.getvalue()


def _write_csv(pool: ThreadPoolExecutor, table: pa.Table, path: Path) -> None:
    starts = range(0, max(table.num_rows, 1), CSV_CHUNK_ROWS)
    chunks = pool.map(
        _csv_chunk, [table.slice(i, CSV_CHUNK_ROWS) for i in starts], [i == 0 for i in starts]
    )
    with path.open("wb") as handle:
        for chunk in chunks:
            handle.write(chunk)


def seed_landing(n_leads: int, seed: int, landing_dir: Path) -> list[Path]:
    """Generate `n_leads` leads and write them into `landing_dir` (see `write_landing`)."""
    written = write_landing(generate(n_leads, seed), landing_dir)
    # The tables are garbage now, but Arrow's allocator keeps their freed pages for reuse (about
    # 0.45 GB per million leads), which the DuckDB load that follows in the same process cannot
    # use: hand them back to the system once, here.
    pa.default_memory_pool().release_unused()
    return written


GENERATED_MARKER = ".generated-by-leadscore.json"


def _record_generated(landing_dir: Path, written: list[Path]) -> None:
    """Remember which landing files are synthetic (a hidden file the loader never reads), so a
    model card can say whether it was trained on demo data or on a user's exports."""
    marker = landing_dir / GENERATED_MARKER
    known = json.loads(marker.read_text()) if marker.exists() else {}
    known.update({p.name: p.stat().st_size for p in written})
    marker.write_text(json.dumps(known, indent=1, sort_keys=True))


def synthetic_share(landing_dir: Path, names_and_sizes: dict[str, int]) -> float:
    """Share of the given landing files (name -> size) written, unchanged, by the generator."""
    marker = landing_dir / GENERATED_MARKER
    known = json.loads(marker.read_text()) if marker.exists() else {}
    if not names_and_sizes:
        return 0.0
    generated = sum(known.get(name) == size for name, size in names_and_sizes.items())
    return generated / len(names_and_sizes)
