"""Compute the feature table and export it to the object store.

The export is ``features/analytic_result_YYYY_MM_DD.csv`` (the ``as_of``
date), a Parquet file of the same rows, and a manifest with the row count,
checksums, ``as_of``, catalogue version and engine. Exporting the same date
again replaces the same objects.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from pikcha.domain.features import (
    CATALOGUE_VERSION,
    FEATURE_NAMES,
    OUTPUT_COLUMNS,
    FeatureRow,
)
from pikcha.ports.features import FeatureEngine
from pikcha.ports.objects import ObjectStore

PREFIX = "features"


@dataclass(frozen=True)
class FeatureExport:
    engine: str
    rows: int
    csv_key: str
    parquet_key: str
    manifest_key: str


def export_name(as_of: datetime) -> str:
    return f"analytic_result_{as_of:%Y_%m_%d}"


def to_csv(rows: list[FeatureRow], as_of: datetime) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(OUTPUT_COLUMNS)
    stamp = as_of.isoformat()
    for row in rows:
        writer.writerow([row.customer_id, *row.values, stamp, CATALOGUE_VERSION])

    return buffer.getvalue().encode("utf-8")


def to_parquet(rows: list[FeatureRow], as_of: datetime) -> bytes:
    columns: dict[str, pa.Array] = {
        "customer_id": pa.array([row.customer_id for row in rows], pa.string())
    }
    for index, name in enumerate(FEATURE_NAMES):
        columns[name] = pa.array([row.values[index] for row in rows], pa.uint8())
    columns["as_of"] = pa.array([as_of] * len(rows), pa.timestamp("us"))
    columns["catalogue_version"] = pa.array(
        [CATALOGUE_VERSION] * len(rows), pa.string()
    )
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer, compression="zstd")

    return buffer.getvalue()


def export_features(
    engine: FeatureEngine, objects: ObjectStore, as_of: datetime
) -> FeatureExport:
    rows = engine.compute(as_of)
    name = f"{PREFIX}/{export_name(as_of)}"
    csv_bytes = to_csv(rows, as_of)
    parquet_bytes = to_parquet(rows, as_of)
    manifest = {
        "as_of": as_of.isoformat(),
        "catalogue_version": CATALOGUE_VERSION,
        "engine": engine.name,
        "rows": len(rows),
        "files": {
            f"{name}.csv": hashlib.sha256(csv_bytes).hexdigest(),
            f"{name}.parquet": hashlib.sha256(parquet_bytes).hexdigest(),
        },
    }
    objects.put(f"{name}.csv", csv_bytes, "text/csv; charset=utf-8")
    objects.put(f"{name}.parquet", parquet_bytes, "application/vnd.apache.parquet")
    # The manifest goes last: when it is there, the files it names are too.
    objects.put(
        f"{name}.manifest.json",
        json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"),
        "application/json",
    )

    return FeatureExport(
        engine.name,
        len(rows),
        f"{name}.csv",
        f"{name}.parquet",
        f"{name}.manifest.json",
    )
