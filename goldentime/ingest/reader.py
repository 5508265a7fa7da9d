"""Turning one landing file into numbered lines, however damaged the file is.

The fast path reads the file once, splits it on newlines with Arrow and validates UTF-8 in bulk, so
a clean 1M-line file costs about as much as reading it. A damaged file (truncated gzip, invalid
UTF-8) keeps every line that can be read; what went wrong is returned as a file-level problem and
every unreadable line is marked so that the loader quarantines it with its line number.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from goldentime.ingest.landing import LandingFile


@dataclass
class FileLines:
    """Lines of one file: `line_no` (1-based), `line` (text), `utf8_ok` (False: shown with \\x escapes)."""

    table: pa.Table
    problems: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return self.table.num_rows


def _gunzip(raw: bytes) -> tuple[bytes, str | None]:
    """Decompress every gzip member; on damage return what was readable and say what went wrong."""
    out: list[bytes] = []
    remaining = raw
    while remaining:
        decompressor = zlib.decompressobj(wbits=31)
        try:
            out.append(decompressor.decompress(remaining))
        except zlib.error as exc:
            readable = sum(map(len, out))
            return b"".join(out), f"corrupt gzip data ({exc}); kept the {readable} bytes before it"
        if not decompressor.eof:
            out.append(decompressor.flush())
            readable = sum(map(len, out))
            return b"".join(out), (
                f"truncated gzip: the stream ends without its end marker; kept the {readable} bytes that "
                "could be decompressed (the last line is probably cut)"
            )
        remaining = decompressor.unused_data.lstrip(b"\x00")
    return b"".join(out), None


def _split_lines(data: bytes) -> pa.LargeBinaryArray:
    if not data:
        return pa.array([], pa.large_binary())
    whole = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), 1, [None, pa.py_buffer(np.array([0, len(data)], dtype=np.int64)), pa.py_buffer(data)]
    )
    lines = pc.split_pattern(whole, b"\n").flatten()
    if len(lines) and data.endswith(b"\n"):
        lines = lines.slice(0, len(lines) - 1)  # the newline ends the last line; it does not start one
    return lines


def _decode_lines(lines: pa.LargeBinaryArray) -> tuple[pa.Array, pa.Array]:
    """UTF-8 text of each line and whether it was valid; invalid lines are shown with \\x escapes.

    Arrow validates a whole array at once; when that fails, halving finds the bad lines with a few
    more bulk casts instead of decoding every line in Python.
    """
    texts: list[pa.Array] = []
    flags: list[np.ndarray] = []

    def decode(part: pa.LargeBinaryArray) -> None:
        try:
            texts.append(part.cast(pa.large_string()))
            flags.append(np.ones(len(part), dtype=bool))
            return
        except pa.ArrowInvalid:
            pass
        if len(part) == 1:
            texts.append(pa.array([part[0].as_py().decode("utf-8", "backslashreplace")], pa.large_string()))
            flags.append(np.zeros(1, dtype=bool))
            return
        middle = len(part) // 2
        decode(part.slice(0, middle))
        decode(part.slice(middle))

    if len(lines):
        decode(lines)
    text = pa.chunked_array(texts, pa.large_string()).combine_chunks() if texts else pa.array([], pa.large_string())
    return text, pa.array(np.concatenate(flags) if flags else np.zeros(0, dtype=bool))


def read_lines(file: LandingFile) -> FileLines:
    """Read a landing file into numbered lines. Never raises for damaged content, only for I/O errors."""
    with file.fs.open(file.path, "rb") as handle:
        raw = handle.read()
    problems: list[str] = []
    if file.name.endswith(".gz"):
        raw, problem = _gunzip(raw)
        if problem:
            problems.append(problem)
    if not raw:
        problems.append("empty file: no lines to load")
    lines = _split_lines(raw)
    text, utf8_ok = _decode_lines(lines)
    bad_utf8 = len(text) - pc.sum(utf8_ok).as_py() if len(text) else 0
    if bad_utf8:
        problems.append(f"{bad_utf8} line(s) are not valid UTF-8")
    table = pa.table(
        {
            "line_no": pa.array(np.arange(1, len(text) + 1, dtype=np.int64)),
            "line": text,
            "utf8_ok": utf8_ok,
        }
    )
    return FileLines(table=table, problems=problems)
