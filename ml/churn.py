"""Churn classifier: training with a time split, calibrated probabilities, evaluation against baselines.

Model: a scikit-learn Pipeline (ordinal-encode the categorical features with a fixed vocabulary →
HistGradientBoostingClassifier, native categorical splits and missing values), wrapped in
CalibratedClassifierCV (sigmoid by default; isotonic optional) whose folds are grouped by customer,
so a customer seen at several training cut-offs never sits on both sides of a calibration fold.

Training rows are snapshots at the training cut-offs (:func:`ml.features.plan_cutoffs`); the model
is judged on the later, held-out evaluation cut-off, whose label window no training row saw.
Baselines on the same rows:
- ``recency_only``: days since the last purchase, mapped to a probability by a logistic fit on
  log(1 + recency) over the training buyers (non-buyers get the training churn rate of non-buyers);
- ``bgnbd_no_purchase``: BG/NBD's own P(no purchase in the horizon) (1 − P(alive) alone would call
  every one-time buyer certainly alive); non-buyers, outside BG/NBD, get 1.

Metrics (per population: every customer, and buyers = customers with a purchase before the cut-off,
where churn is really decided): ROC AUC, top-decile lift, Brier score, log loss, expected calibration
error, base rate; a lift table and a calibration table per model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Literal

import numpy as np
import polars as pl

from ml import ranking
from ml.features import (
    ACQUISITION_CHANNELS,
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    LIFECYCLE_STAGES,
    FeatureConfig,
)

MODEL_NAME = "churn"
CATEGORIES = {"acquisition_channel": list(ACQUISITION_CHANNELS), "lifecycle_stage": list(LIFECYCLE_STAGES)}


@dataclass(frozen=True)
class ChurnConfig:
    features: FeatureConfig = field(default_factory=FeatureConfig)
    n_train_cutoffs: int = 8
    cutoff_step_days: int = 7
    min_history_days: int = 14
    population: Literal["all", "members", "buyers"] = "all"  # training rows
    calibration: Literal["sigmoid", "isotonic"] = "sigmoid"
    calibration_folds: int = 3
    learning_rate: float = 0.03
    max_iter: int = 300
    max_leaf_nodes: int = 7
    min_samples_leaf: int = 80
    l2_regularization: float = 1.0
    random_state: int = 0
    drop_features: tuple[str, ...] = ()  # features the model ignores (still built, recorded and checked)
    n_threads: int | None = None  # OpenMP threads; None: 1 below 5,000 rows (threads cost more than they save), else all

    def used_features(self) -> list[str]:
        unknown = set(self.drop_features) - set(FEATURE_COLUMNS)
        if unknown:
            raise ValueError(f"drop_features names unknown features {sorted(unknown)}")
        return [c for c in FEATURE_COLUMNS if c not in self.drop_features]

    def to_dict(self) -> dict:
        return asdict(self)


def feature_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """The model's input columns, in the recorded order."""
    return frame.select(list(FEATURE_COLUMNS))


def select_population(frame: pl.DataFrame, population: str) -> pl.DataFrame:
    if population == "all":
        return frame
    if population == "members":
        return frame.filter(pl.col("is_member"))
    if population == "buyers":
        return frame.filter(pl.col("orders_count") > 0)
    raise ValueError(f"unknown population {population!r} (all | members | buyers)")


def to_pandas(frame: pl.DataFrame):
    """Model input as pandas (what the ColumnTransformer selects by name)."""
    pdf = feature_frame(frame).with_columns(pl.col("is_member").cast(pl.Float64)).to_pandas()
    for column in CATEGORICAL_FEATURES:
        pdf[column] = pdf[column].astype(object)
    return pdf


def make_pipeline(config: ChurnConfig = ChurnConfig()):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    used = config.used_features()
    categorical = [c for c in CATEGORICAL_FEATURES if c in used]
    numeric = [c for c in used if c not in CATEGORICAL_FEATURES]
    encode = ColumnTransformer(
        [
            ("categorical", OrdinalEncoder(categories=[CATEGORIES[c] for c in categorical],
                                           handle_unknown="use_encoded_value", unknown_value=np.nan,
                                           encoded_missing_value=np.nan), categorical),
            ("numeric", "passthrough", numeric),
        ],
        verbose_feature_names_out=False,
        remainder="drop",
    )
    model = HistGradientBoostingClassifier(
        learning_rate=config.learning_rate, max_iter=config.max_iter, max_leaf_nodes=config.max_leaf_nodes,
        min_samples_leaf=config.min_samples_leaf, l2_regularization=config.l2_regularization,
        categorical_features=list(range(len(categorical))) or None, early_stopping=True, validation_fraction=0.15,
        n_iter_no_change=20, random_state=config.random_state,
    )
    return Pipeline([("encode", encode), ("model", model)])


def fit(train: pl.DataFrame, config: ChurnConfig = ChurnConfig()):
    """Calibrated classifier fitted on labelled snapshot rows (features + churned + customer_id)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import GroupKFold

    train = select_population(train, config.population)
    y = train["churned"].to_numpy().astype(int)
    if len(np.unique(y)) < 2:
        raise ValueError("training rows have a single class: widen the data or the horizon")
    X = to_pandas(train)
    for column in X.columns:  # a feature never observed in training (e.g. BG/NBD could not be fitted)
        if X[column].isna().all():  # is constant for the model; HistGradientBoosting cannot bin all-NaN
            X[column] = 0.0
    groups = train["customer_id"].to_numpy()
    folds = min(config.calibration_folds, len(np.unique(groups)))
    splits = list(GroupKFold(n_splits=folds).split(X, y, groups))
    calibrated = CalibratedClassifierCV(make_pipeline(config), method=config.calibration, cv=splits)
    with _threads(config.n_threads, len(y)):
        return calibrated.fit(X, y)


def _threads(n_threads: int | None, rows: int):
    from threadpoolctl import threadpool_limits

    return threadpool_limits(n_threads if n_threads is not None else (1 if rows < 5_000 else None))


def predict(model, frame: pl.DataFrame) -> np.ndarray:
    """P(churn) per row of a feature frame."""
    if frame.height == 0:
        return np.zeros(0)
    with _threads(None, frame.height):
        return model.predict_proba(to_pandas(frame))[:, 1]


# ---------------------------------------------------------------------------------------- baselines

@dataclass
class RecencyBaseline:
    """P(churn) from days since the last purchase alone: a logistic regression on log(1 + recency)
    fitted on the training buyers (monotone, so it ranks exactly like raw recency); non-buyers get
    the training churn rate of non-buyers."""

    nonbuyer_rate: float = 1.0
    coef: float = 0.0
    intercept: float = 0.0

    def fit(self, frame: pl.DataFrame) -> RecencyBaseline:
        from sklearn.linear_model import LogisticRegression

        buyers = frame.filter(pl.col("days_since_last_order").is_not_null())
        others = frame.filter(pl.col("days_since_last_order").is_null())
        self.nonbuyer_rate = float(others["churned"].mean()) if others.height else 1.0
        y = buyers["churned"].to_numpy().astype(int)
        if len(np.unique(y)) == 2:
            x = np.log1p(buyers["days_since_last_order"].to_numpy().astype(float))[:, None]
            fitted = LogisticRegression(C=1e6).fit(x, y)
            self.coef, self.intercept = float(fitted.coef_[0, 0]), float(fitted.intercept_[0])
        else:
            rate = float(np.clip(y.mean() if len(y) else 0.5, 1e-3, 1 - 1e-3))
            self.coef, self.intercept = 0.0, float(np.log(rate / (1 - rate)))
        return self

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        recency = frame["days_since_last_order"].to_numpy().astype(float)
        logit = self.intercept + self.coef * np.log1p(np.nan_to_num(recency, nan=0.0))
        return np.where(np.isnan(recency), self.nonbuyer_rate, 1.0 / (1.0 + np.exp(-logit)))


def bgnbd_no_purchase(frame: pl.DataFrame) -> np.ndarray:
    """BG/NBD P(no purchase in the horizon); 1 for non-buyers (or when BG/NBD could not be fitted)."""
    return frame["prob_no_purchase"].fill_nan(None).fill_null(1.0).to_numpy().astype(float)


# ---------------------------------------------------------------------------------------- evaluation

def classification_metrics(y, probability) -> dict[str, float]:
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(probability, dtype=float), 1e-6, 1 - 1e-6)
    both = len(np.unique(y)) == 2
    return {
        "customers": int(len(y)),
        "base_rate": float(y.mean()) if len(y) else 0.0,
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "top_decile_lift": ranking.lift_at(y, p, 0.1),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "ece": ranking.expected_calibration_error(y, p),
        "mean_predicted": float(p.mean()) if len(p) else 0.0,
    }


@dataclass
class ChurnEvaluation:
    cutoff: str
    horizon_days: int
    metrics: dict[str, dict[str, dict[str, float]]]  # population -> model -> metric -> value
    lift: dict[str, list[dict]]  # model -> lift table (population buyers)
    calibration: dict[str, list[dict]]  # model -> calibration table (population buyers)
    calibration_all: dict[str, list[dict]]

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(model, evaluation: pl.DataFrame, train: pl.DataFrame, config: ChurnConfig = ChurnConfig()) -> ChurnEvaluation:
    """The model and both baselines on the held-out evaluation snapshot (labelled rows)."""
    recency = RecencyBaseline().fit(select_population(train, config.population))
    scores = {
        "model": predict(model, evaluation),
        "recency_only": recency.predict(evaluation),
        "bgnbd_no_purchase": bgnbd_no_purchase(evaluation),
    }
    y = evaluation["churned"].to_numpy().astype(int)
    buyers = (evaluation["orders_count"] > 0).to_numpy()
    populations = {"all": np.ones(len(y), dtype=bool), "buyers": buyers, "non_buyers": ~buyers}
    metrics = {
        name: {m: classification_metrics(y[mask], s[mask]) for m, s in scores.items()}
        for name, mask in populations.items() if mask.any()
    }
    return ChurnEvaluation(
        cutoff=str(evaluation["cutoff"][0]) if "cutoff" in evaluation.columns and evaluation.height else "",
        horizon_days=config.features.horizon_days,
        metrics=metrics,
        lift={m: ranking.lift_table(y[buyers], s[buyers]) for m, s in scores.items()},
        calibration={m: ranking.calibration_table(y[buyers], s[buyers]) for m, s in scores.items()},
        calibration_all={m: ranking.calibration_table(y, s) for m, s in scores.items()},
    )


# ---------------------------------------------------------------------------------------- artefacts

def train_model(training_set: pl.DataFrame, config: ChurnConfig, *, plan: dict, feature_set: str,
                root=None, now=None):
    """Fit on the 'train' rows of a training set and save a new model version (ml.artifacts)."""
    from ml import artifacts
    from ml.features import feature_names

    train = training_set.filter(pl.col("role") == "train")
    model = fit(train, config)
    population = select_population(train, config.population)
    label_end = max(train["cutoff"].to_list()) if train.height else None
    metadata = {
        "task": f"P(churn): {config.features.label} in the {config.features.horizon_days} days after the cut-off",
        "feature_set": feature_set,
        "feature_config": asdict(config.features),
        "churn_config": config.to_dict(),
        "used_features": config.used_features(),
        "cutoffs": plan,
        "training_window": {
            "data_from": plan.get("data_start"),
            "first_cutoff": str(min(train["cutoff"].to_list())) if train.height else None,
            "last_cutoff": str(label_end) if label_end else None,
            "labels_observed_until": str(label_end + timedelta(days=config.features.horizon_days)) if label_end else None,
        },
        "training_rows": population.height,
        "training_customers": int(population["customer_id"].n_unique()),
        "training_churn_rate": float(population["churned"].mean()) if population.height else None,
        "model_class": "CalibratedClassifierCV(Pipeline(ColumnTransformer, HistGradientBoostingClassifier))",
    }
    schema = artifacts.feature_schema(feature_frame(train))
    assert [f["name"] for f in schema] == feature_names()
    return model, artifacts.save_model(model, name=MODEL_NAME, features=schema, metadata=metadata, root=root, now=now)
