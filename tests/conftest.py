import gzip as gzip_module
import json
import os
from datetime import date
from pathlib import Path

import duckdb
import pytest

# GX must never try to reach its analytics service from a test.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


class Landing:
    """A landing zone in a temporary folder, filled line by line by the tests."""

    def __init__(self, root: Path):
        self.root = root

    def folder(self, feed: str, day: date) -> Path:
        folder = self.root / feed / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def events(self, day: date, name: str, lines, *, gzip: bool = False) -> Path:
        payload = b"".join(_line_bytes(line) + b"\n" for line in lines)
        path = self.folder("events", day) / (name + (".jsonl.gz" if gzip else ".jsonl"))
        path.write_bytes(gzip_module.compress(payload) if gzip else payload)
        return path

    def orders(self, day: date, name: str, text: str) -> Path:
        path = self.folder("orders", day) / f"{name}.csv"
        path.write_text(text)
        return path


def _line_bytes(line) -> bytes:
    if isinstance(line, bytes):
        return line
    if isinstance(line, dict):
        return json.dumps(line, ensure_ascii=False).encode()
    return line.encode()


@pytest.fixture
def landing(tmp_path) -> Landing:
    root = tmp_path / "landing"
    root.mkdir()
    return Landing(root)


@pytest.fixture
def warehouse(tmp_path):
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield con
    con.close()


def track(message_id: str, event: str = "Product Viewed", *, ts: str = "2026-01-02T10:00:00Z", **fields) -> dict:
    call = {"type": "track", "messageId": message_id, "event": event, "timestamp": ts, "anonymousId": "anon-1"}
    call.update(fields)
    return call
