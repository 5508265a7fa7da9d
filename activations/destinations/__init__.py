"""Destinations: one module each, declaring limits and sending one batch (see activations.sync.destination)."""

from .files import OutboxDestination, SnapshotFileDestination
from .webhook import WebhookDestination

__all__ = ["OutboxDestination", "SnapshotFileDestination", "WebhookDestination"]
