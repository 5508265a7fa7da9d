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
) -> None:
    """Generate sample data (if the landing zone is empty) and materialise every asset."""
    from goldentime.ingest.landing import landing_days

    started = time.perf_counter()
    landing = settings.landing_url()
    if fresh:
        shutil.rmtree(landing, ignore_errors=True)
        Path(settings.warehouse_path()).unlink(missing_ok=True)
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
    _materialize(INGEST_SELECTION, env, partition_range=partition_range, log_name="demo-ingest")
    _print_ingest_summary(time.perf_counter() - started)


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


def _materialize(selection: str, env: dict, *, partition_range: str | None = None, log_name: str) -> None:
    """Run `dagster asset materialize` as a user would, keeping its log in data/logs."""
    log_dir = settings.data_dir() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{log_name}.log"
    command = [_bin("dagster"), "asset", "materialize", "-m", "orchestration.definitions",
               "--select", selection]
    if partition_range:
        command += ["--partition-range", partition_range]
    with open(log_path, "w") as log:
        result = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=settings.REPO_ROOT)
    if result.returncode != 0:
        tail = log_path.read_text().splitlines()[-25:]
        typer.echo("\n".join(tail), err=True)
        raise typer.Exit(_fail(f"materialisation of {selection} failed; full log: {log_path}"))


def _print_ingest_summary(seconds: float) -> None:
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
    typer.echo(f"  warehouse: {settings.warehouse_path()}")
    typer.echo(f"  took {seconds:.1f}s — browse it with `make dev`")


if __name__ == "__main__":
    app()
