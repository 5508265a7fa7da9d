"""ML: churn features, training, evaluation and scoring as Dagster assets (domain code in ml/)."""

import dagster as dg

from orchestration.defs.ml.assets import (
    ML_ASSETS,
    ml_automation_sensor,
    ml_job,
    ml_scoring_job,
    ml_training_job,
    ml_training_schedule,
)
from orchestration.defs.ml.settings import MlSettings

defs = dg.Definitions(
    assets=ML_ASSETS,
    jobs=[ml_job, ml_training_job, ml_scoring_job],
    schedules=[ml_training_schedule],
    sensors=[ml_automation_sensor],
    resources={"ml_settings": MlSettings()},
)
