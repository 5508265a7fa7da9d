"""Notice new or changed landing files and load their landing day."""


import hashlib
import json

import dagster as dg

from goldentime.ingest.landing import LandingZoneError, landing_files
from orchestration.defs.ingest.assets import ingest_job, raw_orders, raw_segment_calls
from orchestration.defs.ingest.partitions import landing_days
from orchestration.resources import LandingZone

_ASSETS_BY_FEED = {"events": raw_segment_calls, "orders": raw_orders}


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Loads a landing day again whenever a file in it is added or changed (size or mtime).",
)
def landing_zone_sensor(context: dg.SensorEvaluationContext, landing: LandingZone):
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    try:
        files = [f for feed in _ASSETS_BY_FEED for f in landing_files(landing.url, feed)]
    except LandingZoneError as exc:
        return dg.SkipReason(str(exc))
    valid_days = set(landing_days.get_partition_keys())
    changed: dict[tuple[str, str], list[str]] = {}
    for file in files:
        if seen.get(file.path) != file.fingerprint:
            changed.setdefault((file.feed, file.day.isoformat()), []).append(file.fingerprint)
    requests, skipped = [], []
    for (feed, day), fingerprints in sorted(changed.items()):
        if day not in valid_days:
            skipped.append(f"{feed} {day} (outside the partitions; set GOLDENTIME_PARTITIONS_START)")
            continue
        digest = hashlib.sha256("\n".join(sorted(fingerprints)).encode()).hexdigest()[:16]
        requests.append(
            dg.RunRequest(
                run_key=f"{feed}:{day}:{digest}",
                partition_key=day,
                asset_selection=sorted(_ASSETS_BY_FEED[feed].keys),
                tags={"goldentime/feed": feed},
            )
        )
    for file in files:
        seen[file.path] = file.fingerprint
    if skipped:
        context.log.warning("landing days not loaded: " + "; ".join(skipped))
    if not requests:
        return dg.SkipReason("no new or changed landing files" + (f"; skipped {len(skipped)}" if skipped else ""))
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen))
