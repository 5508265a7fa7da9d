"""GrowthBook-compatible deterministic assignment of customers to experiment arms.

Any GrowthBook SDK given the same experiment key, customer id and weights reproduces the variant
chosen here, so an assignment made in the warehouse and one made in an app or on a website agree.

Character iteration: the JavaScript SDK (the reference implementation) hashes `str.charCodeAt(i)`,
i.e. UTF-16 code units. We do the same. For characters in the Basic Multilingual Plane (every
accented Latin letter, CJK, ...) a code unit equals the code point, so the Python SDK (which hashes
`ord(ch)`) agrees too; they only diverge for astral characters such as emoji, where JS sees a
surrogate pair and the Python SDK one code point. We follow JS because it is what the browser runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

FNV_OFFSET_BASIS = 0x811C9DC5
FNV_PRIME = 0x01000193
UINT32_MASK = 0xFFFFFFFF
HOLDOUT_ARM = "holdout"
DEFAULT_HOLDOUT_SHARE = 0.05


def _utf16_code_units(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-16-le"), dtype="<u2")


def fnv1a32(text: str, start: int = FNV_OFFSET_BASIS) -> int:
    """32-bit FNV-1a over the UTF-16 code units of `text` (JS `charCodeAt`), as GrowthBook does.

    `start` lets a caller continue a hash from a common prefix (the experiment seed).
    """
    value = start
    for unit in _utf16_code_units(text).tolist():
        value = ((value ^ unit) * FNV_PRIME) & UINT32_MASK
    return value


def hash_bucket(seed: str, customer_id: str) -> float:
    """GrowthBook hash version 2: a value in [0, 1) with 4 decimals, uniform over customers."""
    return (fnv1a32(str(fnv1a32(seed + customer_id))) % 10000) / 10000


def bucket_ranges(weights: Sequence[float], coverage: float = 1.0) -> list[tuple[float, float]]:
    """Variant ranges as GrowthBook builds them: [cumulative weight, cumulative + coverage × weight).

    Ranges start at the cumulative weight (not the cumulative covered width) so that raising
    coverage later only widens each range and nobody already in the experiment changes variant.
    """
    if not 0.0 <= coverage <= 1.0:
        raise ValueError(f"coverage must be in [0, 1], got {coverage}")
    ranges = []
    cumulative = 0.0
    for weight in weights:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def choose_variant(n: float, ranges: Sequence[tuple[float, float]]) -> int | None:
    """Index of the first range with lo ≤ n < hi, or None when the customer is outside coverage."""
    for index, (low, high) in enumerate(ranges):
        if low <= n < high:
            return index
    return None


# ---------------------------------------------------------------------------------------------
# Vectorised hashing: the same arithmetic column by column over all ids at once, because a pure
# Python loop costs ~10 µs per customer (four FNV passes) and campaigns target millions.


def _fnv1a32_many(code_units: np.ndarray, lengths: np.ndarray, start: np.ndarray) -> np.ndarray:
    """FNV-1a over each row of a padded (rows × max_len) code-unit matrix, continuing from `start`."""
    value = start.astype(np.uint64, copy=True)
    prime = np.uint64(FNV_PRIME)
    mask = np.uint64(UINT32_MASK)
    for column in range(code_units.shape[1]):
        active = lengths > column
        # value < 2^32 and prime < 2^25, so the product fits in uint64 before masking.
        stepped = ((value ^ code_units[:, column]) * prime) & mask
        value = np.where(active, stepped, value)
    return value


def _padded_code_units(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [text.encode("utf-16-le") for text in texts]
    lengths = np.fromiter((len(b) // 2 for b in encoded), dtype=np.int64, count=len(encoded))
    flat = np.frombuffer(b"".join(encoded), dtype="<u2").astype(np.uint64)
    max_len = int(lengths.max()) if len(lengths) else 0
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1])) if len(lengths) else lengths
    columns = np.arange(max_len)
    positions = offsets[:, None] + columns[None, :]
    valid = columns[None, :] < lengths[:, None]
    matrix = np.zeros((len(texts), max_len), dtype=np.uint64)
    matrix[valid] = flat[positions[valid]]
    return matrix, lengths


def _decimal_digits(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Code units of str(value) for uint32 values, left-aligned and padded (at most 10 digits)."""
    values = values.astype(np.uint64)
    powers = np.array([10**k for k in range(10)], dtype=np.uint64)
    lengths = 1 + (values[:, None] >= powers[None, 1:]).sum(axis=1).astype(np.int64)
    matrix = np.zeros((len(values), 10), dtype=np.uint64)
    for column in range(10):
        exponent = lengths - 1 - column
        active = exponent >= 0
        divisor = powers[np.clip(exponent, 0, 9)]
        digit = (values // divisor) % np.uint64(10)
        matrix[:, column] = np.where(active, digit + np.uint64(ord("0")), 0)
    return matrix, lengths


def hash_buckets(seed: str, customer_ids: Sequence[str]) -> np.ndarray:
    """`hash_bucket(seed, id)` for many ids at once; identical results, vectorised with numpy."""
    if len(customer_ids) == 0:
        return np.zeros(0, dtype=np.float64)
    # The seed is a shared prefix: hash it once and continue from that state for every id.
    seed_state = np.full(len(customer_ids), fnv1a32(seed), dtype=np.uint64)
    units, lengths = _padded_code_units(customer_ids)
    first = _fnv1a32_many(units, lengths, seed_state)
    digits, digit_lengths = _decimal_digits(first)
    basis = np.full(len(customer_ids), FNV_OFFSET_BASIS, dtype=np.uint64)
    second = _fnv1a32_many(digits, digit_lengths, basis)
    return (second % np.uint64(10000)).astype(np.float64) / 10000


def _normalised_weights(variant_weights: Mapping[str, float]) -> tuple[list[str], np.ndarray]:
    names = list(variant_weights)
    if not names:
        raise ValueError("at least one variant is required")
    if HOLDOUT_ARM in names:
        raise ValueError(f"'{HOLDOUT_ARM}' is reserved for the holdout, not a variant name")
    weights = np.array([float(variant_weights[name]) for name in names])
    if (weights < 0).any():
        raise ValueError("variant weights must be non-negative")
    total = weights.sum()
    # Demand weights that already sum to 1: silently rescaling would hide a caller's mistake
    # and GrowthBook itself falls back to equal weights in that case, which we never want.
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"variant weights must sum to 1, got {total}")
    return names, weights / total


def assign(
    experiment_key: str,
    customer_ids: Iterable[str | int],
    variant_weights: Mapping[str, float],
    holdout_share: float = DEFAULT_HOLDOUT_SHARE,
    sticky_arms: Mapping[str, str] | None = None,
) -> np.ndarray:
    """Arm per customer ('holdout' or a variant name), aligned with `customer_ids`.

    The holdout is decided first with its own salt (`<key>:holdout`), independent of the variant
    weights, so changing weights (e.g. a bandit reallocating) never moves anyone in or out of it.
    Non-holdout customers are bucketed on the experiment key with full coverage, exactly as a
    GrowthBook SDK would for an experiment with these weights.

    `sticky_arms` (customer id → arm already given) wins over the hash, so customers keep their arm
    when weights change mid-campaign; the caller owns storing those.
    """
    if not 0.0 <= holdout_share < 1.0:
        raise ValueError(f"holdout_share must be in [0, 1), got {holdout_share}")
    ids = [str(customer_id) for customer_id in customer_ids]
    names, weights = _normalised_weights(variant_weights)

    in_holdout = hash_buckets(f"{experiment_key}:{HOLDOUT_ARM}", ids) < holdout_share
    n = hash_buckets(experiment_key, ids)
    # With coverage 1 the ranges tile [0, 1): the variant is the interval n falls in. Clipping
    # guards against cumulative float sums ending a hair below 1.
    upper_edges = np.cumsum(weights)
    variant_index = np.minimum(np.searchsorted(upper_edges, n, side="right"), len(names) - 1)

    arms = np.array(names + [HOLDOUT_ARM], dtype=object)
    result = arms[np.where(in_holdout, len(names), variant_index)]
    if sticky_arms:
        for position, customer_id in enumerate(ids):
            previous = sticky_arms.get(customer_id)
            if previous is not None:
                result[position] = previous
    return result
