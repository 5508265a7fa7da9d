"""File destinations: an append-only JSONL outbox, and CSV / Parquet snapshots of the audience.

Paths are local paths or fsspec URLs (``memory://``, ``s3://`` ...).
"""

from __future__ import annotations

import io
import json
import os
from datetime import datetime, timezone

import fsspec
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from activations.sync.destination import RowResult, SyncRow


class OutboxDestination:
    """Appends every row it receives to a JSONL file, one line each, flushed per batch.

    Deduplicates on the idempotency key like a well-behaved API: a re-sent row is recorded again
    (``"duplicate": true``) but acknowledged without being delivered twice. ``delivered()`` lists
    the rows delivered once each; ``received()`` every line.
    """

    def __init__(self, path: str, name: str = "outbox", batch_size: int = 100,
                 max_requests_per_second: float | None = None, fsync: bool = True):
        self.path = str(path)
        self.name = name
        self.batch_size = batch_size
        self.max_requests_per_second = max_requests_per_second
        self.fsync = fsync

    def received(self) -> list[dict]:
        fs, fpath = fsspec.core.url_to_fs(self.path)
        if not fs.exists(fpath):
            return []
        with fs.open(fpath, "r", encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def delivered(self) -> list[dict]:
        return [line for line in self.received() if not line["duplicate"]]

    def send(self, rows: list[SyncRow]) -> list[RowResult]:
        seen = {line["idempotency_key"] for line in self.received()}
        stamp = datetime.now(timezone.utc).isoformat()
        lines = []
        for row in rows:
            lines.append(json.dumps({
                "key": row.key, "operation": row.operation, "payload": row.payload,
                "payload_hash": row.payload_hash, "idempotency_key": row.idempotency_key,
                "duplicate": row.idempotency_key in seen, "received_at": stamp,
            }, default=str))
            seen.add(row.idempotency_key)
        fs, fpath = fsspec.core.url_to_fs(self.path)
        parent = fs._parent(fpath)
        if parent:
            fs.makedirs(parent, exist_ok=True)
        with fs.open(fpath, "a", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))
            fh.flush()
            if self.fsync and hasattr(fh, "fileno"):
                try:
                    os.fsync(fh.fileno())
                except (OSError, io.UnsupportedOperation):
                    pass
        return [RowResult(row.key, "ok") for row in rows]


class SnapshotFileDestination:
    """Keeps the current audience snapshot as one CSV or Parquet file (adds/changes upsert, removes drop).

    Use with mode='mirror' for a full snapshot. After each run the snapshot is also copied to
    ``<stem>.<run_id>.<ext>`` beside it when ``keep_runs`` is set (the engine calls ``close_run``).
    """

    def __init__(self, path: str, format: str | None = None, name: str = "snapshot",
                 batch_size: int = 10_000, max_requests_per_second: float | None = None,
                 keep_runs: bool = True):
        self.path = str(path)
        self.format = format or ("parquet" if self.path.endswith(".parquet") else "csv")
        if self.format not in ("csv", "parquet"):
            raise ValueError("format must be 'csv' or 'parquet'")
        self.name = name
        self.batch_size = batch_size
        self.max_requests_per_second = max_requests_per_second
        self.keep_runs = keep_runs
        self._rows: dict[str, dict] | None = None

    # -- file io ------------------------------------------------------------------------
    def _read(self, path: str) -> list[dict]:
        fs, fpath = fsspec.core.url_to_fs(path)
        if not fs.exists(fpath):
            return []
        with fs.open(fpath, "rb") as fh:
            data = fh.read()
        if self.format == "parquet":
            table = pq.read_table(io.BytesIO(data))
        else:
            # Everything as text: the snapshot is an export, not a typed store.
            table = pacsv.read_csv(io.BytesIO(data), convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in pacsv.read_csv(io.BytesIO(data)).column_names}))
        return table.to_pylist()

    def _write(self, path: str, rows: list[dict]) -> None:
        table = pa.Table.from_pylist(rows) if rows else pa.table({"_key": pa.array([], pa.string())})
        buf = io.BytesIO()
        if self.format == "parquet":
            pq.write_table(table, buf)
        else:
            pacsv.write_csv(table, buf)
        fs, fpath = fsspec.core.url_to_fs(path)
        parent = fs._parent(fpath)
        if parent:
            fs.makedirs(parent, exist_ok=True)
        tmp = fpath + ".tmp"
        with fs.open(tmp, "wb") as fh:
            fh.write(buf.getvalue())
        fs.mv(tmp, fpath)  # replace whole, never half-written

    def snapshot(self) -> list[dict]:
        return self._read(self.path)

    # -- destination --------------------------------------------------------------------
    def send(self, rows: list[SyncRow]) -> list[RowResult]:
        current = {str(r["_key"]): r for r in self._read(self.path)}
        for row in rows:
            if row.operation == "remove":
                current.pop(row.key, None)
            else:
                current[row.key] = {"_key": row.key, **row.payload}
        self._write(self.path, [current[k] for k in sorted(current)])
        return [RowResult(row.key, "ok") for row in rows]

    def close_run(self, run_id: str) -> None:
        if not self.keep_runs:
            return
        stem, dot, ext = self.path.rpartition(".")
        target = f"{stem}.{run_id}.{ext}" if dot else f"{self.path}.{run_id}"
        self._write(target, self._read(self.path))
