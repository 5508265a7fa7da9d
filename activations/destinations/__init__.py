"""Destinations: one module each, declaring limits and sending one batch (see activations.sync.destination).

Build one from configuration with ``activations.destinations.registry.build_destination``.
"""

from .ads import GoogleCustomerMatchDestination, MetaCustomAudienceDestination
from .braze import BrazeDestination
from .customerio import CustomerIoDestination
from .email import SmtpDestination
from .files import OutboxDestination, SnapshotFileDestination
from .kakao import AlimtalkDestination
from .sms import SmsDestination
from .webhook import WebhookDestination

__all__ = [
    "AlimtalkDestination", "BrazeDestination", "CustomerIoDestination", "GoogleCustomerMatchDestination",
    "MetaCustomAudienceDestination", "OutboxDestination", "SmsDestination", "SmtpDestination",
    "SnapshotFileDestination", "WebhookDestination",
]
