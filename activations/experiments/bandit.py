"""Thompson-sampling allocation of traffic between experiment variants.

The holdout is not part of this: its share is fixed by `assignment.assign` and the weights returned
here split only the non-holdout traffic between variants.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from activations.experiments.assignment import HOLDOUT_ARM

DEFAULT_FLOOR = 0.01
DEFAULT_MIN_EXPOSURES = 100
DEFAULT_DRAWS = 10_000


def thompson_weights(
    stats: Mapping[str, tuple[int, int]],
    floor: float = DEFAULT_FLOOR,
    min_exposures: int = DEFAULT_MIN_EXPOSURES,
    draws: int = DEFAULT_DRAWS,
    seed: int | None = None,
) -> dict[str, float]:
    """Variant weights summing to 1 from arm → (exposures, conversions).

    Each variant's weight is the share of posterior draws in which it has the highest conversion
    rate, with Beta(1 + conversions, 1 + failures) posteriors. Until every variant has
    `min_exposures`, weights stay equal: early posteriors are noise and reallocating on them would
    starve arms before they are measured. Every variant keeps at least `floor` so no arm is ever
    fully switched off and the estimate can still recover.
    """
    variants = {arm: counts for arm, counts in stats.items() if arm != HOLDOUT_ARM}
    if not variants:
        raise ValueError("at least one variant is required")
    arms = list(variants)
    exposures = np.array([variants[arm][0] for arm in arms], dtype=np.int64)
    conversions = np.array([variants[arm][1] for arm in arms], dtype=np.int64)
    if (conversions < 0).any() or (conversions > exposures).any():
        raise ValueError("conversions must be between 0 and exposures for every arm")
    if not 0.0 <= floor * len(arms) <= 1.0:
        raise ValueError(f"floor {floor} cannot be guaranteed to {len(arms)} arms")

    if (exposures < min_exposures).any():
        return {arm: 1.0 / len(arms) for arm in arms}

    rng = np.random.default_rng(seed)
    samples = rng.beta(1 + conversions, 1 + exposures - conversions, size=(draws, len(arms)))
    wins = np.bincount(samples.argmax(axis=1), minlength=len(arms))
    raw = wins / draws
    # Reserve the floor for every arm and share the rest by win probability: each arm gets at least
    # the floor and the total is exactly 1 (clipping then rescaling could push an arm under it).
    weights = floor + (1.0 - floor * len(arms)) * raw
    return {arm: float(weight) for arm, weight in zip(arms, weights)}
