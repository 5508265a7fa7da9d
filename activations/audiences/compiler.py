"""Compile an audience spec to one parameterised SQL query over the warehouse.

Every value a marketer writes becomes a bound parameter; every identifier (a filter field, the
ranking column, a model name) is checked against the columns and relations that exist and quoted,
so a spec can never paste SQL. The query returns one row per qualifying customer, ranked, with the
customer 360 (``marts.dim_customers``), the latest ML scores (``ml.customer_scores``) and the
source's ``triggered_at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from .spec import AudienceSpec, AudienceSpecError

CUSTOMERS = "marts.dim_customers"
SCORES = "ml.customer_scores"
COHORTS = "marts.fct_behavioural_cohort_members"
DROPOFFS = "marts.fct_funnel_dropoff_cohorts"
# Score columns joined onto the 360 (the 360 already has lifecycle_stage).
SCORE_COLUMNS = (
    "churn_probability", "churn_risk_band", "p_alive", "predicted_ltv", "ltv_rank", "value_tier",
    "save_priority", "save_priority_rank", "next_best_channel", "recommended_products", "scoring_date",
)
_COMPARISONS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(frozen=True)
class CompiledAudience:
    sql: str
    params: list
    columns: tuple[str, ...]  # the columns a filter, ranking or template may use


def naive_utc(moment: datetime) -> datetime:
    """The warehouse stores UTC timestamps without a zone."""
    return moment if moment.tzinfo is None else moment.astimezone(timezone.utc).replace(tzinfo=None)


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def relation_columns(con, relation: str) -> list[str]:
    schema, table = relation.split(".", 1)
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position", [schema, table]).fetchall()
    return [r[0] for r in rows]


def _source_sql(spec: AudienceSpec, con) -> tuple[str, list, list[str]]:
    """SELECT customer_id, triggered_at[, extra columns] for the spec's source."""
    source = spec.source
    if source.kind == "customers":
        return f"SELECT customer_id, CAST(NULL AS TIMESTAMP) AS triggered_at FROM {CUSTOMERS}", [], []
    if source.kind == "cohort":
        if not relation_columns(con, COHORTS):
            raise AudienceSpecError(f"{spec.name}: {COHORTS} does not exist yet (run the dbt build first)")
        sql = (f"SELECT customer_id, CAST(last_qualifying_event_at AS TIMESTAMP) AS triggered_at FROM {COHORTS} "
               f"WHERE cohort_name = ? AND snapshot_date = (SELECT max(snapshot_date) FROM {COHORTS} WHERE cohort_name = ?)")
        return sql, [source.name, source.name], []
    if source.kind == "funnel_dropoff":
        if not relation_columns(con, DROPOFFS):
            raise AudienceSpecError(f"{spec.name}: {DROPOFFS} does not exist yet (run the dbt build first)")
        sql = (f"SELECT customer_id, CAST(last_step_at AS TIMESTAMP) AS triggered_at, missed_step_name FROM {DROPOFFS} "
               "WHERE funnel_name = ? AND dropped_after_step = ? AND is_window_elapsed")
        return sql, [source.name, source.step], ["missed_step_name"]
    columns = relation_columns(con, source.name)
    if not columns:
        raise AudienceSpecError(f"{spec.name}: source model {source.name} does not exist")
    if "customer_id" not in columns:
        raise AudienceSpecError(f"{spec.name}: source model {source.name} has no customer_id column")
    schema, table = source.name.split(".", 1)
    extra = [c for c in columns if c != "customer_id"]
    # Without a trigger column the source has none; with one, triggered_at is that column.
    after = spec.golden_time.after if spec.golden_time else None
    trigger = f"CAST({quote(after)} AS TIMESTAMP)" if after in extra else "CAST(NULL AS TIMESTAMP)"
    extra = [c for c in extra if c != "triggered_at"]
    select_extra = "".join(f", {quote(c)}" for c in extra)
    return (f"SELECT customer_id, {trigger} AS triggered_at{select_extra} FROM {quote(schema)}.{quote(table)}",
            [], extra)


def compile_audience(spec: AudienceSpec, con, as_of: datetime) -> CompiledAudience:
    """The ranked members of ``spec`` at ``as_of`` (naive UTC timestamp or aware datetime)."""
    customer_columns = relation_columns(con, CUSTOMERS)
    if not customer_columns:
        raise AudienceSpecError(f"{spec.name}: {CUSTOMERS} does not exist yet (run the dbt build first)")
    score_columns = [c for c in SCORE_COLUMNS if c in relation_columns(con, SCORES)]
    source_sql, params, source_extra = _source_sql(spec, con)

    if score_columns:
        scores = (f"SELECT * FROM {SCORES} QUALIFY row_number() OVER "
                  "(PARTITION BY customer_id ORDER BY scoring_date DESC) = 1")
        score_select = "".join(f", s.{quote(c)}" for c in score_columns)
        score_join = f"LEFT JOIN ({scores}) s ON s.customer_id = c.customer_id"
    else:
        score_select, score_join = "", ""
    source_select = "".join(f", src.{quote(c)}" for c in source_extra if c not in customer_columns and c not in score_columns)
    available = (*customer_columns, *score_columns, "triggered_at",
                 *[c for c in source_extra if c not in customer_columns and c not in score_columns])

    as_of_naive = naive_utc(as_of)
    where, where_params = [], []
    for f in spec.filters:
        if f.field not in available:
            raise AudienceSpecError(f"{spec.name}: filter field {f.field!r} is not a column "
                                    f"(known: {', '.join(sorted(available))})")
        column = quote(f.field)
        if f.op in _COMPARISONS:
            where.append(f"{column} {_COMPARISONS[f.op]} ?")
            where_params.append(f.value)
        elif f.op in ("in", "not_in"):
            marks = ", ".join("?" for _ in f.value) or "NULL"
            where.append(f"{column} {'IN' if f.op == 'in' else 'NOT IN'} ({marks})")
            where_params.extend(f.value)
        elif f.op == "is_null":
            where.append(f"{column} IS NULL")
        elif f.op == "not_null":
            where.append(f"{column} IS NOT NULL")
        elif f.op == "within_last":  # happened in (as_of - d, as_of]
            where.append(f"CAST({column} AS TIMESTAMP) > ? AND CAST({column} AS TIMESTAMP) <= ?")
            where_params.extend([as_of_naive - f.value, as_of_naive])
        elif f.op == "before_last":  # happened before as_of - d (e.g. lapsed)
            where.append(f"CAST({column} AS TIMESTAMP) <= ?")
            where_params.append(as_of_naive - f.value)

    golden = spec.golden_time
    if golden:
        if golden.after not in available:
            raise AudienceSpecError(f"{spec.name}: golden_time.after {golden.after!r} is not a column")
        trigger = f"CAST({quote(golden.after)} AS TIMESTAMP)"
        # Golden time: only once the delay has passed since the trigger, and not once it expired.
        where.append(f"{trigger} <= ?")
        where_params.append(as_of_naive - golden.delay)
        if golden.expires is not None:
            where.append(f"{trigger} > ?")
            where_params.append(as_of_naive - golden.expires)

    rank_sql = "customer_id"
    if spec.ranking:
        if spec.ranking.by not in available:
            raise AudienceSpecError(f"{spec.name}: ranking.by {spec.ranking.by!r} is not a column")
        direction = "DESC" if spec.ranking.descending else "ASC"
        rank_sql = f"{quote(spec.ranking.by)} {direction} NULLS LAST, customer_id"

    sql = f"""
WITH source AS (
    SELECT * FROM ({source_sql}) QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY triggered_at DESC NULLS LAST) = 1
), profile AS (
    SELECT c.*{score_select}, src.triggered_at{source_select}
    FROM source src
    JOIN {CUSTOMERS} c ON c.customer_id = src.customer_id
    {score_join}
), qualified AS (
    SELECT * FROM profile {('WHERE ' + ' AND '.join(where)) if where else ''}
), ranked AS (
    SELECT *, row_number() OVER (ORDER BY {rank_sql}) AS audience_rank, count(*) OVER () AS qualified_count
    FROM qualified
)
SELECT * FROM ranked"""
    limits, limit_params = [], []
    if spec.ranking and spec.ranking.top_percent is not None:
        limits.append("audience_rank <= ceil(qualified_count * ? / 100.0)")
        limit_params.append(spec.ranking.top_percent)
    if spec.ranking and spec.ranking.limit is not None:
        limits.append("audience_rank <= ?")
        limit_params.append(spec.ranking.limit)
    if limits:
        sql += "\nWHERE " + " AND ".join(limits)
    sql += "\nORDER BY audience_rank"
    return CompiledAudience(sql, params + where_params + limit_params, tuple(available))
