import time

import pytest
from scipy import stats

from activations.experiments.assignment import (
    assign,
    bucket_ranges,
    choose_variant,
    fnv1a32,
    hash_bucket,
    hash_buckets,
)
from activations.experiments.bandit import thompson_weights


# --- GrowthBook reference cases (SEMANTICS.md, Experiments) -----------------------------------


@pytest.mark.parametrize(
    ("seed", "customer_id", "expected"),
    [("seed", "a", 0.0505), ("foo", "ab", 0.2575), ("90850943850283058242805", "123", 0.7516)],
)
def test_hash_bucket_matches_growthbook_reference_cases(seed, customer_id, expected):
    assert hash_bucket(seed, customer_id) == expected


def test_bucket_ranges_reference_case():
    ranges = bucket_ranges([0.2, 0.3, 0.5], coverage=0.2)
    expected = [(0.0, 0.04), (0.2, 0.26), (0.5, 0.6)]
    for (low, high), (expected_low, expected_high) in zip(ranges, expected, strict=True):
        assert low == pytest.approx(expected_low)
        assert high == pytest.approx(expected_high)


def test_choose_variant_takes_first_range_and_none_outside_coverage():
    ranges = bucket_ranges([0.2, 0.3, 0.5], coverage=0.2)
    assert choose_variant(0.0, ranges) == 0
    assert choose_variant(0.0399, ranges) == 0
    assert choose_variant(0.0401, ranges) is None
    # No rounding of range edges, exactly like the JS SDK: 0.2 × 0.2 is 0.04000000000000001 in
    # IEEE doubles there too, so a bucket of exactly 0.04 falls in variant 0 in every SDK.
    assert choose_variant(0.04, ranges) == 0
    assert choose_variant(0.2, ranges) == 1
    assert choose_variant(0.55, ranges) == 2
    assert choose_variant(0.6, ranges) is None
    assert choose_variant(0.99, ranges) is None


# --- Non-ASCII ids: UTF-16 code units, like JS charCodeAt ---------------------------------------


def _fnv_over(units):
    value = 0x811C9DC5
    for unit in units:
        value = ((value ^ unit) * 0x01000193) & 0xFFFFFFFF
    return value


def test_fnv_uses_utf16_code_units_for_non_ascii():
    # BMP characters: one code unit equal to the code point (so the Python SDK agrees too).
    assert fnv1a32("é") == _fnv_over([0xE9])
    # Astral characters: JS charCodeAt sees the surrogate pair, not the code point.
    assert fnv1a32("😀") == _fnv_over([0xD83D, 0xDE00])
    assert fnv1a32("😀") != _fnv_over([0x1F600])


def test_non_ascii_values_match_growthbook_js():
    # Expected values computed with the JS SDK's hashFnv32a / hash v2 under node.
    assert fnv1a32("é") == 1812687940
    assert fnv1a32("😀") == 3409036472
    assert fnv1a32("Zoë-客户") == 4189178441
    assert hash_bucket("exp", "Zoë-客户") == 0.9897
    assert hash_bucket("exp", "😀-42") == 0.2177


def test_vectorised_hash_equals_scalar_hash():
    ids = [f"cust-{i}" for i in range(3000)] + ["", "a", "Zoë-客户", "😀-42", "123", "x" * 60]
    vectorised = hash_buckets("campaign-2026-11", ids)
    assert vectorised.tolist() == [hash_bucket("campaign-2026-11", i) for i in ids]


# --- assign -------------------------------------------------------------------------------------

WEIGHTS = {"control": 0.5, "email": 0.3, "sms": 0.2}


def test_assign_is_deterministic_and_stable_across_calls():
    ids = [f"c{i}" for i in range(5000)]
    first = assign("winback", ids, WEIGHTS)
    assert first.tolist() == assign("winback", ids, WEIGHTS).tolist()
    # Order of the input does not matter: each customer's arm depends only on its own id.
    reversed_arms = assign("winback", list(reversed(ids)), WEIGHTS)
    assert first.tolist() == list(reversed(reversed_arms.tolist()))
    # Integer ids hash as their decimal string.
    assert assign("winback", [17], WEIGHTS)[0] == assign("winback", ["17"], WEIGHTS)[0]


def test_assign_non_holdout_matches_growthbook_variant_choice():
    ids = [f"c{i}" for i in range(2000)]
    arms = assign("winback", ids, WEIGHTS, holdout_share=0.0)
    names = list(WEIGHTS)
    ranges = bucket_ranges(list(WEIGHTS.values()))
    expected = [names[choose_variant(hash_bucket("winback", i), ranges)] for i in ids]
    assert arms.tolist() == expected


def test_holdout_unchanged_when_weights_change():
    ids = [f"c{i}" for i in range(20000)]
    before = assign("winback", ids, WEIGHTS) == "holdout"
    after = assign("winback", ids, {"control": 0.1, "email": 0.1, "sms": 0.8}) == "holdout"
    two_arms = assign("winback", ids, {"control": 0.5, "sms": 0.5}) == "holdout"
    assert (before == after).all()
    assert (before == two_arms).all()
    assert 0.04 < before.mean() < 0.06


def test_sticky_arms_win_over_the_hash():
    ids = ["a", "b", "c"]
    arms = assign("winback", ids, {"control": 0.5, "sms": 0.5}, sticky_arms={"b": "email"})
    assert arms[1] == "email"


def test_shares_match_weights_on_100k_ids():
    ids = [f"customer-{i}" for i in range(100_000)]
    arms = assign("spring-sale", ids, WEIGHTS, holdout_share=0.05)
    names = ["holdout", *WEIGHTS]
    observed = [int((arms == name).sum()) for name in names]
    intended = [0.05] + [0.95 * w for w in WEIGHTS.values()]
    expected = [len(ids) * share for share in intended]
    assert stats.chisquare(observed, expected).pvalue > 0.001


def test_invalid_weights_rejected():
    with pytest.raises(ValueError):
        assign("x", ["a"], {"control": 0.5, "sms": 0.4})
    with pytest.raises(ValueError):
        assign("x", ["a"], {"control": 0.5, "holdout": 0.5})


def test_one_million_assignments_are_fast():
    ids = list(range(1_000_000))
    started = time.perf_counter()
    arms = assign("big-campaign", ids, WEIGHTS)
    elapsed = time.perf_counter() - started
    assert len(arms) == 1_000_000
    assert elapsed < 10  # ~1.5 s measured; generous bound for a loaded CI machine


# --- Thompson-sampling bandit -------------------------------------------------------------------


def test_bandit_equal_weights_until_every_arm_has_min_exposures():
    weights = thompson_weights({"a": (1000, 300), "b": (99, 1), "c": (500, 10)}, seed=1)
    assert weights == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})


def test_bandit_gives_clearly_best_arm_most_weight_and_keeps_floor():
    weights = thompson_weights(
        {"a": (5000, 250), "b": (5000, 600), "c": (5000, 240), "holdout": (800, 30)},
        floor=0.02,
        seed=7,
    )
    assert set(weights) == {"a", "b", "c"}  # holdout stays outside the bandit
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["b"] > 0.9
    assert min(weights.values()) >= 0.02 - 1e-12


def test_bandit_is_deterministic_with_a_seed():
    data = {"a": (400, 40), "b": (400, 48)}
    assert thompson_weights(data, seed=3) == thompson_weights(data, seed=3)
    weights = thompson_weights(data, seed=3)
    assert 0.01 < weights["a"] < weights["b"] < 0.99
