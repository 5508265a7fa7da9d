"""Activate one audience: evaluate → priorities → eligibility → assignment → payloads → sync.

The order matters for measurement: customers the law will never let us message are left out
before assignment; the arm of every remaining customer (holdout included) is written to the
ledger before anything is sent; holdout customers never reach the sync engine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Mapping

from activations.destinations.registry import build_destination
from activations.experiments.allocation import assign_and_record, assigned_customers, latest_round, recorded_arms
from activations.experiments.assignment import HOLDOUT_ARM
from activations.sync.engine import SyncReport, run_sync

from .compiler import naive_utc
from .evaluate import Evaluation, evaluate
from .law import SendingLaw, frequency_caps
from .messages import PayloadBuilder
from .spec import AudienceSpec, AudienceSpecError

PROFILE_ENV = "GOLDENTIME_DESTINATIONS"
DEFAULT_PROFILE = "local"


@dataclass
class AudienceRun:
    audience: str
    channel: str
    destination: str
    as_of: datetime
    qualified: int = 0
    after_priorities: int = 0
    lost_to: dict[str, int] = field(default_factory=dict)
    ineligible: dict[str, int] = field(default_factory=dict)  # reason -> customers kept out by the law
    arms: dict[str, int] = field(default_factory=dict)  # arm -> customers assigned (this run's members)
    waiting: int = 0  # not sent yet: a variant's golden time not reached, or beyond the ramp
    syncs: dict[str, SyncReport] = field(default_factory=dict)  # sync name -> report (one per channel used)
    weights: dict[str, float] = field(default_factory=dict)

    @property
    def sync(self) -> SyncReport | None:
        """The audience's own sync (variants on another channel have theirs, named <audience>@<channel>)."""
        return self.syncs.get(self.audience)

    def total(self, counter: str) -> int:
        return sum(getattr(report, counter) for report in self.syncs.values())

    def summary(self) -> dict:
        sync = self.sync
        held: dict[str, int] = {}
        for report in self.syncs.values():
            for reason, n in report.held_reasons.items():
                held[reason] = held.get(reason, 0) + n
        return {
            "audience": self.audience, "channel": self.channel, "destination": self.destination,
            "as_of": self.as_of.isoformat(), "qualified": self.qualified, "after_priorities": self.after_priorities,
            "lost_to_higher_priority": self.lost_to, "ineligible": self.ineligible, "arms": self.arms,
            "waiting_for_golden_time": self.waiting, "weights": self.weights,
            **{counter: self.total(counter) for counter in ("added", "changed", "removed", "rejected",
                                                             "suppressed", "deferred")},
            "held_reasons": held, "dry_run_path": sync.dry_run_path if sync else None,
            "syncs": sorted(self.syncs),
        }


def destination_config(config: Mapping, name: str, profile: str | None = None) -> Mapping:
    profile = profile or os.environ.get(PROFILE_ENV, DEFAULT_PROFILE)
    profiles = config.get("destinations") or {}
    if profile not in profiles:
        raise AudienceSpecError(f"_config.yml: no destination profile {profile!r} (have {', '.join(profiles)})")
    if name not in profiles[profile]:
        raise AudienceSpecError(f"_config.yml: destination {name!r} is not defined in profile {profile!r}")
    return profiles[profile][name]


def current_weights(con, spec: AudienceSpec, choose: Callable | None = None) -> dict[str, float]:
    """Fixed split: the spec's weights. Bandit: ``choose(con, spec)`` (Thompson sampling on the
    measured results) when given and it has an answer, else the latest round's, else the spec's."""
    spec_weights = {v.name: v.weight for v in spec.experiment.variants}
    if spec.experiment.allocation == "fixed":
        return spec_weights
    if choose is not None:
        chosen = choose(con, spec)
        if chosen:
            return chosen
    latest = latest_round(con, spec.name)
    return latest[1] if latest else spec_weights


def activate(
    con,
    spec: AudienceSpec,
    specs: Mapping[str, AudienceSpec],
    config: Mapping,
    data_dir: str | Path,
    as_of: datetime,
    *,
    dry_run: bool = False,
    destination=None,
    choose_weights: Callable | None = None,
    evaluation: Evaluation | None = None,
    sleep=None,
    environ: Mapping[str, str] | None = None,
) -> AudienceRun:
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=timezone.utc)
    run = AudienceRun(spec.name, spec.channel, spec.destination, as_of)
    evaluation = evaluation or evaluate(con, dict(specs), as_of, only=spec.name)[spec.name]
    run.qualified, run.after_priorities, run.lost_to = len(evaluation.qualified), len(evaluation.members), evaluation.lost_to
    members = evaluation.members
    rows = {str(r["customer_id"]): r for r in members.to_dicts()}

    law = None
    keys = list(rows)
    if spec.is_messaging:
        law = SendingLaw(con, spec.channel, spec.advertising, list(rows.values()), as_of,
                         frequency_caps(config), allow_purchase_relationship=bool(spec.raw.get("allow_purchase_relationship")))
        keys, run.ineligible = law.eligible(keys)

    if spec.max_new_per_run is not None:
        # A ramp: customers already in the campaign stay; at most N new ones (best-ranked) join per run,
        # each run's newcomers taking the weights of that moment (how a bandit's traffic shifts).
        known = set(assigned_customers(con, spec.name))
        newcomers = [k for k in keys if k not in known]
        run.waiting += max(0, len(newcomers) - spec.max_new_per_run)
        admitted = set(newcomers[:spec.max_new_per_run])
        keys = [k for k in keys if k in known or k in admitted]

    weights = current_weights(con, spec, choose_weights)
    run.weights = weights
    if dry_run:  # the arms a real run would give, recording nothing
        from activations.experiments.assignment import assign

        sticky = recorded_arms(con, spec.name)
        arms = dict(zip(keys, (str(a) for a in assign(spec.name, keys, weights, spec.experiment.holdout, sticky))))
    else:
        arms = assign_and_record(con, spec.name, keys, weights, spec.experiment.holdout,
                                 spec.experiment.allocation, as_of)
    for arm in arms.values():
        run.arms[arm] = run.arms.get(arm, 0) + 1

    builder = PayloadBuilder(spec, config, environ)
    variants = {v.name: v for v in spec.experiment.variants}
    base_delay = spec.golden_time.delay if spec.golden_time else timedelta(0)
    main_route = (spec.channel, spec.destination)
    routes: dict[tuple[str, str], list[dict]] = {main_route: []}
    for key in keys:
        arm = arms[key]
        if arm == HOLDOUT_ARM:
            continue
        variant = variants.get(arm) or spec.experiment.variants[0]
        row = rows[key]
        trigger = row.get(spec.golden_time.after) if spec.golden_time else None
        if variant.delay is not None and variant.delay > base_delay and trigger is not None:
            if naive_utc(trigger) > naive_utc(as_of) - variant.delay:
                run.waiting += 1  # this variant's golden time comes later; a later run sends it
                continue
        route = (variant.channel or spec.channel, variant.destination or spec.destination)
        routes.setdefault(route, []).append({"customer_id": key, **builder.build(row, variant)})

    for (channel, destination_name), audience in routes.items():
        sync_name = spec.name if (channel, destination_name) == main_route else f"{spec.name}@{channel}"
        target = destination.get(destination_name) if isinstance(destination, Mapping) else (
            destination if (channel, destination_name) == main_route else None)
        if target is None:
            target = build_destination(destination_name, destination_config(config, destination_name), data_dir,
                                       environ)
        gate = law
        if spec.is_messaging and channel != spec.channel:
            gate = SendingLaw(con, channel, spec.advertising, list(rows.values()), as_of, frequency_caps(config),
                              allow_purchase_relationship=bool(spec.raw.get("allow_purchase_relationship")))
        fields = sorted({k for record in audience for k in record} - {"customer_id"})
        for record in audience:  # every row carries every field (a variant may add one)
            for name in fields:
                record.setdefault(name, None)
        kwargs = {"sleep": sleep} if sleep is not None else {}
        run.syncs[sync_name] = run_sync(
            con, sync_name, audience, "customer_id", fields, target, mode=spec.mode, dry_run=dry_run,
            max_rejected_share=spec.max_rejected_share, gate=gate, channel=channel if spec.is_messaging else None,
            advertising=spec.advertising if spec.is_messaging else None, now=lambda: as_of,
            dry_run_path=Path(data_dir) / "dry_runs" / f"{sync_name}.jsonl" if dry_run else None, **kwargs)
    return run
