"""The interface every destination implements (dlt-style: declare limits, send one batch).

The sync engine owns diffing, batching, retries, rate limiting and the ledger; a destination only
receives one batch and reports one ``RowResult`` per row, in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

OPERATIONS = ("add", "change", "remove")


@dataclass(frozen=True)
class SyncRow:
    key: str
    operation: str  # 'add' | 'change' | 'remove'
    payload: dict
    payload_hash: str
    idempotency_key: str


@dataclass(frozen=True)
class RowResult:
    key: str
    status: str  # 'ok' | 'rejected'
    message: str = ""


class TransientError(Exception):
    """429 / 5xx / time-out: the whole batch is retried (after ``retry_after`` seconds if given)."""

    def __init__(self, message: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class BatchRejected(Exception):
    """The destination refused the whole batch; the engine splits it to isolate the bad rows."""


@runtime_checkable
class Destination(Protocol):
    name: str
    batch_size: int
    max_requests_per_second: float | None

    def send(self, rows: list[SyncRow]) -> list[RowResult]:
        """Send one batch; return one result per row, same order."""
        ...
