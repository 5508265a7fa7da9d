"""Quality: Great Expectations 1.x checks on the raw tables (run inside the ingest assets, so they
see exactly the landing days just loaded) and freshness of the landing feeds."""

import dagster as dg

defs = dg.Definitions()
