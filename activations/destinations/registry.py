"""Build a destination from ``audiences/_config.yml``: ``{type: <kind>, <constructor arguments>}``.

Relative ``path`` / ``journal_path`` values live under the data folder (``GOLDENTIME_DATA``);
``${NAME}`` in a value is read from the environment (for hosts and URLs). Secrets are never
written in the file: their constructors take the *name* of the variable (``api_key_env`` …).
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Mapping

KINDS = {
    "outbox": "activations.destinations.files:OutboxDestination",
    "snapshot": "activations.destinations.files:SnapshotFileDestination",
    "sql": "activations.destinations.sql:SqlTableDestination",
    "webhook": "activations.destinations.webhook:WebhookDestination",
    "smtp": "activations.destinations.email:SmtpDestination",
    "braze": "activations.destinations.braze:BrazeDestination",
    "customerio": "activations.destinations.customerio:CustomerIoDestination",
    "kakao_alimtalk": "activations.destinations.kakao:AlimtalkDestination",
    "sms": "activations.destinations.sms:SmsDestination",
    "meta_custom_audience": "activations.destinations.ads:MetaCustomAudienceDestination",
    "google_customer_match": "activations.destinations.ads:GoogleCustomerMatchDestination",
}
PATH_ARGUMENTS = ("path", "journal_path")
_VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


class DestinationConfigError(ValueError):
    pass


def _expand(value, environ: Mapping[str, str], where: str):
    if not isinstance(value, str):
        return value

    def replace(match):
        name = match.group(1)
        if name not in environ:
            raise DestinationConfigError(f"{where}: environment variable {name} is not set")
        return environ[name]

    return _VARIABLE.sub(replace, value)


def build_destination(name: str, config: Mapping, data_dir: str | Path, environ: Mapping[str, str] | None = None):
    environ = os.environ if environ is None else environ
    if "type" not in config:
        raise DestinationConfigError(f"destination {name!r}: 'type' is required ({', '.join(KINDS)})")
    kind = config["type"]
    if kind not in KINDS:
        raise DestinationConfigError(f"destination {name!r}: unknown type {kind!r} ({', '.join(KINDS)})")
    kwargs = {k: _expand(v, environ, f"destination {name!r}.{k}") for k, v in config.items() if k != "type"}
    for key in PATH_ARGUMENTS:
        if key in kwargs and "://" not in str(kwargs[key]) and not Path(kwargs[key]).is_absolute():
            kwargs[key] = str(Path(data_dir) / kwargs[key])
    if kind in ("outbox", "snapshot", "webhook", "smtp") and "name" not in kwargs:
        kwargs["name"] = name
    module_name, class_name = KINDS[kind].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise DestinationConfigError(f"destination {name!r} ({kind}): {exc}") from None
