"""Settings of the ML assets (one resource, `ml_settings`), mapped onto the plain-Python configs of ml/."""

from __future__ import annotations

from pathlib import Path

import dagster as dg


class MlSettings(dg.ConfigurableResource):
    """Churn / LTV / ranking settings shared by the training, evaluation and scoring assets.

    The defaults suit the 60-day demo data: 14-day horizon, up to 8 weekly training cut-offs with at
    least 14 days of history each, the evaluation cut-off at data end − 14 days. Scoring reads the
    feature settings from the model artefact, and refuses a model trained on other features.
    """

    models_dir: str = ""  # empty: GOLDENTIME_MODELS, else <repo>/data/models
    horizon_days: int = 14
    label: str = "no_purchase"  # or "no_activity"
    n_train_cutoffs: int = 8
    cutoff_step_days: int = 7
    min_history_days: int = 14
    population: str = "all"  # training rows: all | members | buyers
    calibration: str = "sigmoid"  # or "isotonic"
    ltv_months: int = 3
    discount_rate: float = 0.01
    value_tier_cuts: list[float] = [0.2, 0.5]
    risk_thresholds: list[float] = [0.5, 0.8]
    n_recommendations: int = 5

    def root(self) -> Path:
        from ml.artifacts import models_dir

        return Path(self.models_dir).resolve() if self.models_dir else models_dir()

    def churn_config(self):
        from ml.churn import ChurnConfig
        from ml.features import FeatureConfig

        return ChurnConfig(
            features=FeatureConfig(horizon_days=self.horizon_days, label=self.label),
            n_train_cutoffs=self.n_train_cutoffs, cutoff_step_days=self.cutoff_step_days,
            min_history_days=self.min_history_days, population=self.population, calibration=self.calibration,
        )

    def scoring_config(self):
        from ml.scoring import ScoringConfig

        return ScoringConfig(ltv_months=self.ltv_months, discount_rate=self.discount_rate,
                             value_tier_cuts=tuple(self.value_tier_cuts), risk_thresholds=tuple(self.risk_thresholds),
                             n_recommendations=self.n_recommendations)
