import dagster as dg

from goldentime import settings

# One partition per landing day (UTC). end_offset=1 exposes today's partition, whose files are
# still arriving, so the sensor can load them the same day.
landing_days = dg.DailyPartitionsDefinition(
    start_date=settings.partitions_start(), timezone="UTC", end_offset=1
)
