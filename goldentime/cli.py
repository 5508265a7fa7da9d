"""`goldentime`: the command line of the platform."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import typer

from goldentime import settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Golden Time: the right message, to the right customer, at the right moment.")

INGEST_SELECTION = "raw/events,raw/identifies,raw/orders"
DEMO_DESTINATION_FOLDERS = ("outbox", "exports", "dry_runs", "journals")


@app.command()
def generate(
    out: Path = typer.Option(None, help="Landing folder to write (default: GOLDENTIME_LANDING or data/landing)."),
    customers: int = typer.Option(None, help="Number of simulated people (visitors and members)."),
    events: int = typer.Option(None, help="Aim for about this many events instead of giving --customers."),
    start: str = typer.Option("2026-01-01", help="First simulated day (UTC)."),
    days: int = typer.Option(90, help="Number of simulated days."),
    seed: int = typer.Option(42, help="Random seed: the same seed writes the same bytes."),
    gzip: bool = typer.Option(True, help="Write .jsonl.gz (default) or plain .jsonl."),
    clean: bool = typer.Option(False, help="Delete the landing folder first."),
) -> None:
    """Write a simulated shop's Segment events and orders export into the landing zone."""
    from goldentime.sample_data import generate as simulate

    target = Path(out or settings.landing_url())
    if clean and target.exists():
        shutil.rmtree(target)
    kwargs = dict(start=date.fromisoformat(start), days=days, seed=seed, gzip=gzip)
    if events is not None:
        kwargs["events"] = events
    elif customers is not None:
        kwargs["customers"] = customers
    summary = simulate(target, **kwargs)
    typer.echo(f"wrote {target}: {summary}")


@app.command()
def demo(
    customers: int = typer.Option(10_000, help="Simulated people when sample data has to be generated."),
    days: int = typer.Option(60, help="Simulated days when sample data has to be generated."),
    fresh: bool = typer.Option(False, help="Regenerate the sample data and rebuild the warehouse from scratch."),
    campaign_rounds: int = typer.Option(3, help="Daily sends of the spring_sale A/B/N campaign to simulate and "
                                              "measure (0: skip)."),
) -> None:
    """Generate sample data (if the landing zone is empty) and materialise every asset."""
    from goldentime.ingest.landing import landing_days

    started = time.perf_counter()
    landing = settings.landing_url()
    if fresh:
        shutil.rmtree(landing, ignore_errors=True)
        Path(settings.warehouse_path()).unlink(missing_ok=True)
        for local_destination in DEMO_DESTINATION_FOLDERS:  # the local "tools" the audiences were sent to
            shutil.rmtree(settings.data_dir() / local_destination, ignore_errors=True)
    if not Path(landing).exists() or not any(Path(landing).rglob("date=*")):
        typer.echo(f"generating sample data into {landing} …")
        generate(out=Path(landing), customers=customers, events=None, start="2026-01-01", days=days,
                 seed=42, gzip=True, clean=False)
    all_days = sorted(set(landing_days(landing, "events")) | set(landing_days(landing, "orders")))
    if not all_days:
        raise typer.Exit(_fail(f"no landing days under {landing}"))
    env = settings.dagster_env()
    if all_days[0].isoformat() < settings.partitions_start():
        env[settings.PARTITIONS_START_ENV] = all_days[0].isoformat()
    partition_range = f"{all_days[0].isoformat()}...{all_days[-1].isoformat()}"
    typer.echo(f"materialising {INGEST_SELECTION} for landing days {partition_range} …")
    _dagster(["asset", "materialize", "--select", INGEST_SELECTION, "--partition-range", partition_range],
             env, log_name="demo-ingest", what=f"ingestion of {partition_range}")
    typer.echo("building the dbt models (transform_job: dbt build, every test an asset check) …")
    _dagster(["job", "execute", "-j", "transform_job"], env, log_name="demo-transform", what="dbt build")
    typer.echo("training, evaluating and scoring (ml_job: churn model, BG/NBD + Gamma-Gamma LTV, ranking) …")
    _dagster(["job", "execute", "-j", "ml_job"], env, log_name="demo-ml", what="ML training, evaluation and scoring")
    # The simulated shop's "now" is its last event, not today's date: audiences are evaluated then.
    env.setdefault(settings.AS_OF_ENV, _data_now().isoformat())
    env.setdefault("GOLDENTIME_UNSUBSCRIBE_SECRET", "demo-only-unsubscribe-secret")
    typer.echo(f"syncing the audiences as of {env[settings.AS_OF_ENV]} (activations_job: audiences/*.yml → "
               "local files under data/) …")
    _dagster(["job", "execute", "-j", "activations_job"], env, log_name="demo-activations", what="audience syncs")
    _print_ingest_summary()
    _print_model_summary()
    _print_score_summary()
    _print_activation_summary()
    if campaign_rounds:
        from goldentime.campaign_demo import run_demo_campaign

        run_demo_campaign(_dagster, env, _data_now_utc(), INGEST_SELECTION, typer.echo, rounds=campaign_rounds)
    typer.echo(f"\ndone in {time.perf_counter() - started:.0f}s; warehouse {settings.warehouse_path()}; "
               f"logs in {settings.data_dir() / 'logs'}; browse it all with `make dev`")


@app.command()
def dev() -> None:
    """Start the Dagster UI on this project (dagster dev -w workspace.yaml)."""
    env = settings.dagster_env()
    os.execvpe(
        _bin("dagster"), [_bin("dagster"), "dev", "-w", str(settings.REPO_ROOT / "workspace.yaml")], env
    )


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _fail(message: str) -> int:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return 1


def _dagster(arguments: list[str], env: dict, *, log_name: str, what: str) -> None:
    """Run a `dagster` command on this code location as a user would, keeping its log in data/logs."""
    log_dir = settings.data_dir() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{log_name}.log"
    command = [_bin("dagster"), *arguments, "-m", "orchestration.definitions"]
    with open(log_path, "w") as log:
        result = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=settings.REPO_ROOT)
    if result.returncode != 0:
        tail = log_path.read_text().splitlines()[-25:]
        typer.echo("\n".join(tail), err=True)
        raise typer.Exit(_fail(f"{what} failed; full log: {log_path}"))


def _print_ingest_summary() -> None:
    import duckdb

    con = duckdb.connect(settings.warehouse_path(), read_only=True)
    try:
        rows = con.execute(
            """
            select feed, count(distinct landing_date), count(*), sum(lines_read), sum(loaded),
                   sum(duplicates), sum(quarantined), bool_and(lines_read = loaded + duplicates + quarantined)
            from raw.ingest_log group by feed order by feed
            """
        ).fetchall()
        reasons = con.execute(
            "select feed, reason, count(*) from raw.quarantine group by all order by feed, count(*) desc"
        ).fetchall()
        tables = {t: con.execute(f"select count(*) from raw.{t}").fetchall()[0][0] for t in ("events", "identifies", "orders")}
    finally:
        con.close()
    typer.echo("\nIngestion summary")
    typer.echo(f"  {'feed':<8}{'days':>6}{'files':>7}{'lines':>12}{'loaded':>12}{'duplicates':>12}{'quarantined':>13}  reconciled")
    for feed, n_days, files, lines, loaded, dups, quarantined, ok in rows:
        typer.echo(f"  {feed:<8}{n_days:>6}{files:>7}{lines:>12,}{loaded:>12,}{dups:>12,}{quarantined:>13,}  {'yes' if ok else 'NO'}")
    typer.echo("  tables: " + ", ".join(f"raw.{t} {n:,} rows" for t, n in tables.items()))
    if reasons:
        typer.echo("  quarantined by reason: " + ", ".join(f"{feed}/{reason} {n}" for feed, reason, n in reasons))


def _data_now():
    """The simulated shop's last event, leaving out the demo campaign's own simulated responses (so a
    second `make demo` evaluates the audiences at the same instant as the first)."""
    import duckdb

    con = duckdb.connect(settings.warehouse_path(), read_only=True)
    try:
        return con.execute(
            "select max(event_at) from raw.events where source_file not like '%/campaign-%'").fetchall()[0][0]
    finally:
        con.close()


def _data_now_utc():
    from datetime import timezone

    moment = _data_now()
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _print_activation_summary() -> None:
    import duckdb

    con = duckdb.connect(settings.warehouse_path(), read_only=True)
    try:
        runs = con.execute(
            """
            select r.sync_name, r.added, r.changed, r.removed, r.rejected,
                   (select count(*) from activations.sync_log l where l.run_id = r.run_id and l.status = 'suppressed'),
                   (select count(*) from activations.sync_log l where l.run_id = r.run_id and l.status = 'deferred'),
                   (select count(*) from activations.sync_state s where s.sync_name = r.sync_name)
            from activations.sync_runs r
            -- runs stamped with the same simulated clock tie on started_at: the later row is the later run
            qualify row_number() over (partition by r.sync_name order by r.started_at desc, r.rowid desc) = 1
            order by r.sync_name
            """
        ).fetchall()
        arms = dict(con.execute(
            "select campaign, string_agg(arm || ' ' || n, ', ' order by arm) from "
            "(select campaign, arm, count(*) n from activations.assignments group by all) group by campaign").fetchall())
    finally:
        con.close()
    typer.echo("\nActivations (last run of each audience; local destinations under data/outbox and data/exports)")
    typer.echo(f"  {'audience':<24}{'added':>7}{'changed':>8}{'removed':>8}{'failed':>7}{'held':>6}{'deferred':>9}"
               f"{'synced':>8}  arms")
    for name, added, changed, removed, rejected, held, deferred, synced in runs:
        typer.echo(f"  {name:<24}{added:>7,}{changed:>8,}{removed:>8,}{rejected:>7,}{held:>6,}{deferred:>9,}"
                   f"{synced:>8,}  {arms.get(name, '-')}")
    outbox = settings.data_dir() / "outbox" / "email.jsonl"
    if outbox.exists():
        import json

        first = next((json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines() if line.strip()), None)
        if first:
            payload = first["payload"]
            typer.echo(f"  e.g. email to customer {first['key']} ({payload.get('campaign_id')}/{payload.get('variant')}): "
                       f"{payload.get('subject')}")


def _print_model_summary() -> None:
    import duckdb

    con = duckdb.connect(settings.warehouse_path(), read_only=True)
    try:
        customers, members, buyers, revenue = con.execute(
            "select count(*), count(*) filter (where is_member), count(*) filter (where orders_count > 0), sum(revenue) "
            "from marts.dim_customers"
        ).fetchall()[0]
        stages = con.execute(
            "select lifecycle_stage, count(*) from marts.dim_customers group by 1 order by 2 desc"
        ).fetchall()
        funnel = con.execute(
            """
            select funnel_name, step_number, step_name, customers_entered, conversion_rate_from_first
            from marts.fct_funnel_conversion
            where breakdown_name = 'overall'
            order by funnel_name, step_number
            """
        ).fetchall()
    finally:
        con.close()
    typer.echo("\nCustomer 360 (marts.dim_customers)")
    typer.echo(f"  {customers:,} customers: {members:,} members, {buyers:,} buyers, revenue {revenue or 0:,.0f} KRW")
    typer.echo("  lifecycle: " + ", ".join(f"{stage} {n:,}" for stage, n in stages))
    current = None
    for name, step, step_name, reached, rate in funnel:
        if name != current:
            typer.echo(f"  funnel {name}:")
            current = name
        typer.echo(f"    {step}. {step_name:<24}{reached:>8,}  {100 * (rate or 0):5.1f}% of step 1")


def _print_score_summary() -> None:
    import duckdb

    con = duckdb.connect(settings.warehouse_path(), read_only=True)
    try:
        scoring_date, model, scored, customers = con.execute(
            """
            select s.scoring_date, any_value(s.model_version), count(*), (select count(*) from marts.dim_customers)
            from ml.customer_scores s
            where s.scoring_date = (select max(scoring_date) from ml.customer_scores)
            group by s.scoring_date
            """
        ).fetchall()[0]
        tiers = con.execute(
            """
            select value_tier, count(*), round(sum(predicted_ltv)) from ml.customer_scores
            where scoring_date = (select max(scoring_date) from ml.customer_scores) group by 1 order by 3 desc
            """
        ).fetchall()
    finally:
        con.close()
    typer.echo(f"\nScores (ml.customer_scores, {scoring_date}, model {model})")
    typer.echo(f"  {scored:,} of {customers:,} customers scored")
    typer.echo("  value tiers: " + ", ".join(f"{tier} {n:,} (predicted LTV {ltv or 0:,.0f} KRW)" for tier, n, ltv in tiers))


if __name__ == "__main__":
    app()


audiences_app = typer.Typer(no_args_is_help=True, help="Marketers' audiences (audiences/*.yml).")
app.add_typer(audiences_app, name="audiences")

_PII_COLUMNS = ("email", "email_normalized", "phone", "phone_e164", "name")


def _mask(column: str, value) -> str:
    if value is None:
        return ""
    text = str(value)
    if column in _PII_COLUMNS and text:
        return text[:2] + "***" if column != "email" else text[:2] + "***@" + text.split("@")[-1]
    return text


def _load_audiences():
    from activations.audiences.spec import AudienceSpecError, load_config, load_specs

    try:
        return load_specs(settings.audiences_dir()), load_config(settings.audiences_dir())
    except AudienceSpecError as exc:
        raise typer.Exit(_fail(str(exc)))


@audiences_app.command("list")
def audiences_list() -> None:
    """Every audience with its channel, destination, priority and schedule."""
    specs, _ = _load_audiences()
    typer.echo(f"{'audience':<24}{'channel':<9}{'destination':<13}{'group/rank':<12}{'mode':<8}{'holdout':>8}  schedule")
    for spec in sorted(specs.values(), key=lambda s: (s.priority_group, s.priority, s.name)):
        typer.echo(f"{spec.name:<24}{spec.channel:<9}{spec.destination:<13}{spec.priority_group + '/' + str(spec.priority):<12}"
                   f"{spec.mode:<8}{spec.experiment.holdout:>8.0%}  {spec.schedule or '-'}")


@audiences_app.command("preview")
def audiences_preview(
    name: str = typer.Argument(..., help="Audience name (the file audiences/<name>.yml)."),
    rows: int = typer.Option(10, help="How many of the first rows to show."),
    as_of: str = typer.Option(None, help="Evaluate at this instant (ISO; default GOLDENTIME_AS_OF or now)."),
    show_pii: bool = typer.Option(False, help="Show names, emails and phone numbers unmasked."),
) -> None:
    """Size, overlap with the other audiences, first rows and a rendered message — sends nothing."""
    import duckdb

    from activations.audiences.evaluate import evaluate, overlaps
    from activations.audiences.messages import MessageError, PayloadBuilder
    from activations.audiences.spec import AudienceSpecError

    specs, config = _load_audiences()
    if name not in specs:
        raise typer.Exit(_fail(f"no audience {name!r}; have: {', '.join(sorted(specs))}"))
    spec = specs[name]
    moment = settings.activation_as_of()
    if as_of:
        from datetime import datetime, timezone

        moment = datetime.fromisoformat(as_of)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    con = duckdb.connect(settings.warehouse_path(), read_only=True)
    try:
        evaluations = evaluate(con, specs, moment)
    except AudienceSpecError as exc:
        raise typer.Exit(_fail(str(exc)))
    finally:
        con.close()
    ev = evaluations[name]
    members = ev.members
    typer.echo(f"audience {name} — {spec.channel} via {spec.destination} "
               f"({'advertising' if spec.advertising else 'information'}), priority {spec.priority} in group "
               f"{spec.priority_group}, mode {spec.mode}")
    typer.echo(f"as of {moment.isoformat()}")
    typer.echo(f"  qualified {len(ev.qualified):,}; after priorities {len(members):,}"
               + (f" (lost to {', '.join(f'{k} {v:,}' for k, v in ev.lost_to.items())})" if ev.lost_to else ""))
    consent_column = f"consent_{spec.channel}"
    if spec.is_messaging and consent_column in members.columns:
        consented = int(members[consent_column].fill_null(False).sum())
        typer.echo(f"  with {spec.channel} consent {consented:,} (the sending law drops the others before assignment)")
    pairs = overlaps(evaluations)
    shared = [(b if a == name else a, n) for (a, b), n in pairs.items() if name in (a, b) and n]
    typer.echo("  overlap before priorities: " + (", ".join(f"{other} {n:,}" for other, n in sorted(shared)) or "none"))
    exp = spec.experiment
    typer.echo(f"  experiment: holdout {exp.holdout:.0%}, {exp.allocation} split "
               + " / ".join(f"{v.name} {v.weight:.0%}" for v in exp.variants))
    trigger = spec.golden_time.after if spec.golden_time else "triggered_at"
    shown = ["audience_rank", "customer_id", *([spec.ranking.by] if spec.ranking else []), trigger,
             *spec.fields.values()]
    shown = list(dict.fromkeys(c for c in shown if c in members.columns))
    typer.echo(f"\nfirst {min(rows, len(members))} rows:")
    typer.echo("  " + " | ".join(shown))
    for record in members.head(rows).to_dicts():
        typer.echo("  " + " | ".join(_mask(c, record[c]) if not show_pii else str(record[c]) for c in shown))
    if len(members) and spec.message:
        env = dict(os.environ)
        env.setdefault(config.get("unsubscribe", {}).get("secret_env", "GOLDENTIME_UNSUBSCRIBE_SECRET"), "preview")
        try:
            builder = PayloadBuilder(spec, config, env)
            first = members.head(1).to_dicts()[0]
            for variant in exp.variants:
                payload = builder.build(first, variant)
                typer.echo(f"\nmessage of variant {variant.name} for rank 1:")
                for key in variant.message:
                    value = payload.get(key)
                    typer.echo(f"  {key}: " + str(value).replace("\n", "\n    "))
        except (MessageError, AudienceSpecError) as exc:
            raise typer.Exit(_fail(str(exc)))


@audiences_app.command("exposures")
def audiences_exposures() -> None:
    """Write dbt_project/models/exposures.yml (one dbt exposure per audience)."""
    from activations.audiences.exposures import render_exposures

    specs, _ = _load_audiences()
    path = settings.REPO_ROOT / "dbt_project" / "models" / "exposures.yml"
    path.write_text(render_exposures(specs), encoding="utf-8")
    typer.echo(f"wrote {path} ({len(specs)} exposures)")


campaigns_app = typer.Typer(no_args_is_help=True, help="Campaign results: every arm against the holdout.")
app.add_typer(campaigns_app, name="campaigns")


@campaigns_app.command("report")
def campaigns_report(
    name: str = typer.Argument(..., help="Campaign (= audience) name."),
    seed: int = typer.Option(0, help="Seed of the posterior draws (P(best), next allocation)."),
) -> None:
    """Conversion and revenue per arm, uplift vs holdout with 95% CIs, P(best), SRM and the next split.

    Reads the campaign marts: run `campaign_measurement_job` (or a dbt build) after new events first."""
    import duckdb

    from activations.experiments.results import CampaignNotFound, campaign_results, next_allocation, report_text

    specs, _ = _load_audiences()
    spec = specs.get(name)
    con = duckdb.connect(settings.warehouse_path(), read_only=True)
    try:
        results = campaign_results(con, name, seed=seed)
    except (CampaignNotFound, duckdb.CatalogException) as exc:
        raise typer.Exit(_fail(str(exc)))
    finally:
        con.close()
    allocation = None
    if results.variants:
        floor = spec.experiment.floor if spec else 0.01
        min_exposures = spec.experiment.min_exposures if spec else 100
        allocation = next_allocation(results, floor=floor, min_exposures=min_exposures, seed=seed)
    typer.echo(report_text(results, allocation))
