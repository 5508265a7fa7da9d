"""The single code location: every domain folder under orchestration/defs contributes its defs."""

import dagster as dg

from orchestration.defs import activations, ingest, ml, quality, transform
from orchestration.resources import shared_resources

defs = dg.Definitions.merge(
    ingest.defs,
    quality.defs,
    transform.defs,
    ml.defs,
    activations.defs,
    dg.Definitions(resources=shared_resources()),
)
