"""Audience specifications: one YAML file per audience in ``audiences/``, reviewed like code.

A spec says who (source + filters on the customer 360 and scores), in which order (ranking, limit
or top percent), when (golden time after a trigger), through what (channel, destination, message
template, field mapping), how the sync behaves (mode), and how it is measured (holdout, variants).
Loading validates everything a marketer can get wrong and names the file and the field.
See README.md ("Adding an audience") for the format with an example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

CHANNELS = ("email", "sms", "kakao", "push", "onsite", "ads", "crm")
# Channels that carry a message to a person: the sending law (consent, night time, caps) applies.
MESSAGING_CHANNELS = ("email", "sms", "kakao", "push")
SYNC_MODES = ("upsert", "mirror", "insert")
ALLOCATIONS = ("fixed", "bandit")
FILTER_OPS = ("=", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "not_null", "within_last", "before_last")
MAX_VARIANTS = 11
CONFIG_FILE = "_config.yml"

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d|w)\s*$")
_UNIT_SECONDS = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


class AudienceSpecError(ValueError):
    """A spec that cannot be used; the message names the file and the field."""


def parse_duration(value: Any, where: str) -> timedelta:
    """'90m', '1h', '7d', '2w' (or a number of hours)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(hours=float(value))
    match = _DURATION.match(str(value)) if value is not None else None
    if not match:
        raise AudienceSpecError(f"{where}: {value!r} is not a duration such as 30m, 1h, 7d or 2w")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


@dataclass(frozen=True)
class Filter:
    field: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class Source:
    kind: str  # customers | cohort | funnel_dropoff | model
    name: str | None = None  # cohort name, funnel name or model relation (schema.model)
    step: int | None = None  # funnel_dropoff: customers who reached this step but not the next


@dataclass(frozen=True)
class GoldenTime:
    after: str  # the trigger-time column
    delay: timedelta  # send this long after the trigger ...
    expires: timedelta | None  # ... and not once the trigger is older than this


@dataclass(frozen=True)
class Ranking:
    by: str
    descending: bool = True
    limit: int | None = None
    top_percent: float | None = None


@dataclass(frozen=True)
class Variant:
    name: str
    weight: float
    message: dict[str, Any]
    delay: timedelta | None = None
    # A variant may go out on another channel (e.g. SMS instead of email): its own destination and
    # field mapping. None = the audience's.
    channel: str | None = None
    destination: str | None = None
    fields: dict[str, str] | None = None


@dataclass(frozen=True)
class Experiment:
    holdout: float
    allocation: str  # fixed | bandit
    variants: tuple[Variant, ...]
    floor: float = 0.01
    min_exposures: int = 100


@dataclass(frozen=True)
class AudienceSpec:
    name: str
    description: str
    owner: str
    source: Source
    filters: tuple[Filter, ...]
    channel: str
    destination: str
    advertising: bool
    priority: int
    priority_group: str
    message: dict[str, Any]
    fields: dict[str, str]
    mode: str
    max_rejected_share: float
    experiment: Experiment
    max_new_per_run: int | None = None  # ramp: at most this many customers enter per run, best-ranked first
    golden_time: GoldenTime | None = None
    ranking: Ranking | None = None
    schedule: str | None = None
    path: str = ""
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_messaging(self) -> bool:
        return self.channel in MESSAGING_CHANNELS


def _require(raw: dict, key: str, where: str):
    if key not in raw or raw[key] in (None, ""):
        raise AudienceSpecError(f"{where}: '{key}' is required")
    return raw[key]


def _parse_source(raw: Any, where: str) -> Source:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise AudienceSpecError(
            f"{where}.source: give exactly one of customers: true | cohort: NAME | "
            "funnel_dropoff: {{funnel: NAME, step: K}} | model: SCHEMA.MODEL")
    (kind, value), = raw.items()
    if kind == "customers":
        return Source("customers")
    if kind == "cohort":
        return Source("cohort", str(value))
    if kind == "model":
        if not re.match(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$", str(value)):
            raise AudienceSpecError(f"{where}.source.model: {value!r} must be schema.model (e.g. marts.dim_customers)")
        return Source("model", str(value))
    if kind == "funnel_dropoff":
        if not isinstance(value, dict) or "funnel" not in value or "step" not in value:
            raise AudienceSpecError(f"{where}.source.funnel_dropoff needs funnel and step")
        return Source("funnel_dropoff", str(value["funnel"]), int(value["step"]))
    raise AudienceSpecError(f"{where}.source: unknown source {kind!r}")


def _parse_filters(raw: Any, where: str) -> tuple[Filter, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise AudienceSpecError(f"{where}.filters must be a list of {{field, op, value}}")
    out = []
    for i, item in enumerate(raw):
        at = f"{where}.filters[{i}]"
        if not isinstance(item, dict) or "field" not in item:
            raise AudienceSpecError(f"{at}: needs field, op and (for most ops) value")
        op = str(item.get("op", "="))
        if op not in FILTER_OPS:
            raise AudienceSpecError(f"{at}: op {op!r} is not one of {', '.join(FILTER_OPS)}")
        value = item.get("value")
        if op in ("in", "not_in") and not isinstance(value, list):
            raise AudienceSpecError(f"{at}: op {op} needs a list value")
        if op in ("within_last", "before_last"):
            value = parse_duration(value, at)
        elif op not in ("is_null", "not_null") and "value" not in item:
            raise AudienceSpecError(f"{at}: op {op} needs a value")
        out.append(Filter(str(item["field"]), op, value))
    return tuple(out)


def _parse_ranking(raw: Any, where: str) -> Ranking | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or "by" not in raw:
        raise AudienceSpecError(f"{where}.ranking needs 'by' (a column such as save_priority or predicted_ltv)")
    order = str(raw.get("order", "desc")).lower()
    if order not in ("asc", "desc"):
        raise AudienceSpecError(f"{where}.ranking.order must be asc or desc")
    limit = raw.get("limit")
    top = raw.get("top_percent")
    if limit is not None and (not isinstance(limit, int) or limit <= 0):
        raise AudienceSpecError(f"{where}.ranking.limit must be a positive integer")
    if top is not None and not 0 < float(top) <= 100:
        raise AudienceSpecError(f"{where}.ranking.top_percent must be in (0, 100]")
    return Ranking(str(raw["by"]), order == "desc", limit, float(top) if top is not None else None)


def _parse_experiment(raw: Any, message: dict, where: str, channel: str = "email",
                      advertising: bool = False) -> Experiment:
    raw = raw or {}
    holdout = float(raw.get("holdout", 0.0))
    if not 0.0 <= holdout < 1.0:
        raise AudienceSpecError(f"{where}.experiment.holdout must be in [0, 1)")
    allocation = str(raw.get("allocation", "fixed"))
    if allocation not in ALLOCATIONS:
        raise AudienceSpecError(f"{where}.experiment.allocation must be one of {ALLOCATIONS}")
    variants_raw = raw.get("variants") or [{"name": "default", "weight": 1.0}]
    if len(variants_raw) > MAX_VARIANTS:
        raise AudienceSpecError(f"{where}.experiment: at most {MAX_VARIANTS} variants")
    variants = []
    for i, item in enumerate(variants_raw):
        at = f"{where}.experiment.variants[{i}]"
        name = str(_require(item, "name", at))
        if name == "holdout" or not _NAME.match(name.lower()):
            raise AudienceSpecError(f"{at}: name {name!r} must be a short identifier and not 'holdout'")
        variant_channel = item.get("channel")
        if variant_channel is not None:
            if channel not in MESSAGING_CHANNELS or variant_channel not in MESSAGING_CHANNELS:
                raise AudienceSpecError(f"{at}.channel: only messages can switch channel "
                                        f"({', '.join(MESSAGING_CHANNELS)})")
            if variant_channel == "kakao" and advertising:
                raise AudienceSpecError(f"{at}.channel: Kakao Alimtalk carries information only")
            if not item.get("destination") or not item.get("fields") or not item.get("message"):
                raise AudienceSpecError(f"{at}: a variant on another channel needs its destination, fields and message")
        # A variant on another channel has a message of its own; otherwise it overrides the audience's.
        merged = dict(item["message"]) if variant_channel else {**message, **(item.get("message") or {})}
        delay = parse_duration(item["delay"], f"{at}.delay") if "delay" in item else None
        fields = {str(k): str(v) for k, v in item["fields"].items()} if item.get("fields") else None
        variants.append(Variant(name, float(item.get("weight", 1.0 / len(variants_raw))), merged, delay,
                                variant_channel, item.get("destination"), fields))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise AudienceSpecError(f"{where}.experiment: variant names must be unique")
    total = sum(v.weight for v in variants)
    if abs(total - 1.0) > 1e-6:
        raise AudienceSpecError(f"{where}.experiment: variant weights must sum to 1 (got {total:g})")
    floor = float(raw.get("floor", 0.01))
    return Experiment(holdout, allocation, tuple(variants), floor, int(raw.get("min_exposures", 100)))


def parse_spec(raw: dict, path: str = "<spec>") -> AudienceSpec:
    where = Path(path).name if path else "<spec>"
    if not isinstance(raw, dict):
        raise AudienceSpecError(f"{where}: an audience file holds one mapping")
    name = str(_require(raw, "name", where))
    if not _NAME.match(name):
        raise AudienceSpecError(f"{where}: name {name!r} must be lowercase letters, digits and _")
    channel = str(_require(raw, "channel", where))
    if channel not in CHANNELS:
        raise AudienceSpecError(f"{where}: channel {channel!r} is not one of {', '.join(CHANNELS)}")
    advertising = raw.get("advertising")
    if not isinstance(advertising, bool):
        raise AudienceSpecError(f"{where}: 'advertising' must be true or false (the sending law depends on it)")
    if channel == "kakao" and advertising:
        raise AudienceSpecError(f"{where}: Kakao Alimtalk carries information only (orders, deliveries, grades); "
                                "send promotions by sms or email")
    message = raw.get("message") or {}
    if not isinstance(message, dict):
        raise AudienceSpecError(f"{where}.message must map payload fields to templates")
    fields = raw.get("fields") or {}
    if not isinstance(fields, dict):
        raise AudienceSpecError(f"{where}.fields must map destination fields to columns")
    sync = raw.get("sync") or {}
    mode = str(sync.get("mode", "insert" if channel in MESSAGING_CHANNELS else "upsert"))
    if mode not in SYNC_MODES:
        raise AudienceSpecError(f"{where}.sync.mode must be one of {SYNC_MODES}")
    golden = raw.get("golden_time")
    golden_time = None
    if golden is not None:
        golden_time = GoldenTime(
            after=str(golden.get("after", "triggered_at")),
            delay=parse_duration(golden.get("delay", "0m"), f"{where}.golden_time.delay"),
            expires=parse_duration(golden["expires"], f"{where}.golden_time.expires") if "expires" in golden else None,
        )
    priority = raw.get("priority") or {}
    if isinstance(priority, int):
        priority = {"rank": priority}
    return AudienceSpec(
        name=name,
        description=str(_require(raw, "description", where)),
        owner=str(raw.get("owner", "")),
        source=_parse_source(_require(raw, "source", where), where),
        filters=_parse_filters(raw.get("filters"), where),
        channel=channel,
        destination=str(_require(raw, "destination", where)),
        advertising=advertising,
        priority=int(priority.get("rank", 100)),
        priority_group=str(priority.get("group", channel)),
        message=message,
        fields={str(k): str(v) for k, v in fields.items()},
        mode=mode,
        max_rejected_share=float(sync.get("max_rejected_share", 0.1)),
        max_new_per_run=int(sync["max_new_per_run"]) if sync.get("max_new_per_run") else None,
        experiment=_parse_experiment(raw.get("experiment"), message, where, channel, advertising),
        golden_time=golden_time,
        ranking=_parse_ranking(raw.get("ranking"), where),
        schedule=raw.get("schedule"),
        path=str(path),
        raw=raw,
    )


def load_spec(path: str | Path) -> AudienceSpec:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise AudienceSpecError(f"{path.name}: not valid YAML: {exc}") from None
    return parse_spec(raw, str(path))


def load_specs(directory: str | Path) -> dict[str, AudienceSpec]:
    """Every ``*.yml`` audience in the folder (``_config.yml`` and other ``_`` files excluded)."""
    specs: dict[str, AudienceSpec] = {}
    for path in sorted(Path(directory).glob("*.y*ml")):
        if path.name.startswith("_"):
            continue
        spec = load_spec(path)
        if spec.name in specs:
            raise AudienceSpecError(f"{path.name}: audience name {spec.name!r} already used by {specs[spec.name].path}")
        specs[spec.name] = spec
    return specs


def load_config(directory: str | Path) -> dict:
    path = Path(directory) / CONFIG_FILE
    if not path.exists():
        raise AudienceSpecError(f"{path}: missing (destinations, sender, frequency caps)")
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
