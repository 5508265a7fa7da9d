"""Evaluate audiences against the warehouse and settle overlaps by priority.

A customer who qualifies for several audiences of one priority group (by default: the channel)
goes only to the audience with the best (lowest) ``priority`` rank; ties go to the audience name
in alphabetical order, so the outcome never depends on file order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from .compiler import compile_audience
from .spec import AudienceSpec


@dataclass
class Evaluation:
    spec: AudienceSpec
    qualified: pl.DataFrame  # ranked members before priorities
    members: pl.DataFrame  # after priorities: who this audience actually gets
    lost_to: dict[str, int] = field(default_factory=dict)  # higher-priority audience -> customers it took


def qualified_members(con, spec: AudienceSpec, as_of: datetime) -> pl.DataFrame:
    compiled = compile_audience(spec, con, as_of)
    return pl.from_arrow(con.sql(compiled.sql, params=compiled.params).to_arrow_table())


def evaluate(con, specs: dict[str, AudienceSpec], as_of: datetime,
             only: str | None = None) -> dict[str, Evaluation]:
    """Every audience of ``specs`` (or only those sharing a priority group with ``only``)."""
    if only is not None:
        group = specs[only].priority_group
        specs = {name: spec for name, spec in specs.items() if spec.priority_group == group}
    qualified = {name: qualified_members(con, spec, as_of) for name, spec in specs.items()}
    out: dict[str, Evaluation] = {}
    groups: dict[str, list[AudienceSpec]] = {}
    for spec in specs.values():
        groups.setdefault(spec.priority_group, []).append(spec)
    for group_specs in groups.values():
        taken: dict[str, str] = {}  # customer -> audience that has them
        for spec in sorted(group_specs, key=lambda s: (s.priority, s.name)):
            frame = qualified[spec.name]
            ids = frame["customer_id"].to_list()
            lost: dict[str, int] = {}
            keep = []
            for customer in ids:
                owner = taken.get(customer)
                if owner is None:
                    taken[customer] = spec.name
                    keep.append(True)
                else:
                    lost[owner] = lost.get(owner, 0) + 1
                    keep.append(False)
            members = frame.filter(pl.Series(keep, dtype=pl.Boolean)) if len(frame) else frame
            out[spec.name] = Evaluation(spec, frame, members, lost)
    return out


def overlaps(evaluations: dict[str, Evaluation]) -> dict[tuple[str, str], int]:
    """Customers qualifying for both audiences (before priorities), for every pair."""
    sets = {name: set(ev.qualified["customer_id"].to_list()) for name, ev in evaluations.items()}
    names = sorted(sets)
    return {(a, b): len(sets[a] & sets[b]) for i, a in enumerate(names) for b in names[i + 1:]}
