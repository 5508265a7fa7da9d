"""Transform: the dbt project (dbt_project/) — staging → intermediate → marts — as Dagster assets."""

import dagster as dg

from orchestration.defs.transform.assets import dbt_models, dbt_resource, transform_job

defs = dg.Definitions(
    assets=[dbt_models],
    jobs=[transform_job],
    resources={"dbt": dbt_resource()},
)
