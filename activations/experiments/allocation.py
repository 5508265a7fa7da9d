"""Allocation rounds and sticky assignments, recorded in the ledger before anything is sent.

``activations.allocation_rounds`` keeps the weights each round used (the SRM check needs them);
``activations.assignments`` keeps every customer's arm from their first round on, so a customer
keeps their arm when a bandit reweights and reruns or diffs never move anyone.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Mapping, Sequence

import pyarrow as pa

from activations.sync.ledger import SCHEMA, Ledger

from .assignment import HOLDOUT_ARM, assign


def latest_round(con, campaign: str) -> tuple[int, dict[str, float], float] | None:
    """(round, variant weights, holdout share) of the campaign's latest round, or None."""
    Ledger(con)
    rows = con.execute(
        f"SELECT round, weights, holdout_share FROM {SCHEMA}.allocation_rounds WHERE campaign = ? "
        "ORDER BY round DESC LIMIT 1", [campaign]).fetchall()
    if not rows:
        return None
    number, weights, holdout = rows[0]
    return number, json.loads(weights), holdout


def recorded_arms(con, campaign: str) -> dict[str, str]:
    """customer id -> arm of everyone already assigned to the campaign."""
    Ledger(con)
    return dict(con.execute(
        f"SELECT customer_id, arm FROM {SCHEMA}.assignments WHERE campaign = ?", [campaign]).fetchall())


def assigned_customers(con, campaign: str) -> list[str]:
    return list(recorded_arms(con, campaign))


def ensure_round(con, campaign: str, weights: Mapping[str, float], holdout_share: float, mode: str,
                 now: datetime) -> int:
    """The round to assign new customers in: the latest if its weights are these, else a new one.

    The holdout share is fixed for the whole campaign (SEMANTICS.md): changing it mid-campaign is an
    error rather than a silent break of the comparison.
    """
    latest = latest_round(con, campaign)
    weights = {k: float(v) for k, v in weights.items()}
    if latest is not None:
        number, previous, previous_holdout = latest
        if abs(previous_holdout - holdout_share) > 1e-12:
            raise ValueError(f"campaign {campaign!r}: holdout share changed from {previous_holdout} to "
                             f"{holdout_share} mid-campaign; start a new campaign (new audience name) instead")
        if previous.keys() == weights.keys() and all(abs(previous[k] - weights[k]) < 1e-9 for k in weights):
            return number
        number += 1
    else:
        number = 1
    con.execute(f"INSERT INTO {SCHEMA}.allocation_rounds VALUES (?, ?, ?, ?, ?, ?)",
                [campaign, number, now, mode, holdout_share, json.dumps(weights, sort_keys=True)])
    return number


def assign_and_record(con, campaign: str, customer_ids: Sequence[str], weights: Mapping[str, float],
                      holdout_share: float, mode: str, now: datetime) -> dict[str, str]:
    """Arm of every customer; new customers are assigned in the current round and recorded."""
    Ledger(con)
    ids = [str(c) for c in customer_ids]
    existing = recorded_arms(con, campaign)
    new = [c for c in ids if c not in existing]
    if new:
        number = ensure_round(con, campaign, weights, holdout_share, mode, now)
        arms = assign(campaign, new, weights, holdout_share)
        frame = pa.table({"customer_id": new, "arm": [str(a) for a in arms]})
        con.register("_new_assignments", frame)
        try:
            con.execute(f"INSERT INTO {SCHEMA}.assignments SELECT ?, customer_id, arm, ?, ? FROM _new_assignments",
                        [campaign, number, now])
        finally:
            con.unregister("_new_assignments")
        existing.update(zip(new, (str(a) for a in arms)))
    return {c: existing[c] for c in ids}


__all__ = ["HOLDOUT_ARM", "assigned_customers", "recorded_arms", "latest_round", "ensure_round", "assign_and_record"]
