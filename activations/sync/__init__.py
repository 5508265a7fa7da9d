"""Reverse-ETL sync engine: diffing, batching, retries and the ledger; destinations send one batch."""

from .destination import BatchRejected, Destination, RowResult, SyncRow, TransientError
from .engine import SyncFailed, SyncReport, plan_sync, run_sync
from .ledger import Ledger, idempotency_key, payload_hash

__all__ = [
    "BatchRejected", "Destination", "Ledger", "RowResult", "SyncFailed", "SyncReport", "SyncRow",
    "TransientError", "idempotency_key", "payload_hash", "plan_sync", "run_sync",
]
