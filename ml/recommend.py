"""Personalisation inputs for messages: next-best channel and top-N product recommendations.

Next-best channel — the channel a customer responds to best, among those they consented to:
``score_c = responses_c + prior_c``, where responses_c counts the customer's responses on channel c
(messages opened or clicked, an open and a click of one message counted once; dim_customers'
message engagement events) and prior_c is the mean responses per consented customer on c (so a customer who
never responded gets the channel that works best for everybody, and one response outweighs the
prior only when the channel is not much weaker overall). Consent is the latest known (NULL = no
consent, as in dim_customers). Nobody consented to anything → NULL.

Products — item-to-item co-occurrence (cosine over customers) on interactions weighted purchase 3,
cart add 2, view 1. A customer's candidate score is the sum, over the items they interacted with, of
interaction weight × similarity; items they already bought are excluded; the list is topped up with
the most popular items of their favourite category, then the most popular items overall, so every
customer gets exactly `n` items when the catalogue has them (fewer only for tiny catalogues).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ml.features import CHANNELS, MESSAGE_EVENTS, messages_responded

INTERACTION_WEIGHTS = {"purchase": 3.0, "add": 2.0, "view": 1.0}


# ---------------------------------------------------------------------------------------- channel

def load_consents(con, *, schema: str = "marts") -> pl.DataFrame:
    columns = ", ".join(f"coalesce(consent_{c}, false) as consent_{c}" for c in CHANNELS)
    return con.sql(f"select customer_id, {columns} from {schema}.dim_customers").pl()


def channel_priors(responses: pl.DataFrame, consents: pl.DataFrame) -> dict[str, float]:
    """Mean responses per consented customer, per channel."""
    frame = consents.join(responses, on="customer_id", how="left").fill_null(0)
    priors = {}
    for c in CHANNELS:
        consented = frame.filter(pl.col(f"consent_{c}"))
        priors[c] = float(consented[f"{c}_responses"].mean()) if consented.height else 0.0
    return priors


def next_best_channel(responses: pl.DataFrame, consents: pl.DataFrame,
                      priors: dict[str, float] | None = None) -> pl.DataFrame:
    """customer_id, next_best_channel for every row of `consents`.

    responses: customer_id + <channel>_responses (the feature frame has them); consents:
    customer_id + consent_<channel> booleans. Ties go to the channel listed first in CHANNELS."""
    priors = priors if priors is not None else channel_priors(responses, consents)
    frame = consents.join(responses.select("customer_id", *[f"{c}_responses" for c in CHANNELS]),
                          on="customer_id", how="left").fill_null(0)
    scores = np.column_stack([
        np.where(frame[f"consent_{c}"].to_numpy(), frame[f"{c}_responses"].to_numpy().astype(float) + priors[c], -np.inf)
        for c in CHANNELS
    ]) if frame.height else np.zeros((0, len(CHANNELS)))
    best = np.argmax(scores, axis=1) if len(scores) else np.zeros(0, dtype=int)
    has_any = np.isfinite(scores).any(axis=1) if len(scores) else np.zeros(0, dtype=bool)
    names = [CHANNELS[k] if ok else None for k, ok in zip(best, has_any, strict=True)]
    return frame.select("customer_id").with_columns(pl.Series("next_best_channel", names, dtype=pl.String))


def response_counts(events: pl.DataFrame, start, end) -> pl.DataFrame:
    """customer_id + <channel>_responses from message events dated in [start, end] (customers who responded)."""
    window = events.filter(pl.col("event_date").is_between(start, end) & pl.col("event_name").is_in(list(MESSAGE_EVENTS)))
    return window.group_by("customer_id").agg(*[messages_responded(c).alias(f"{c}_responses") for c in CHANNELS])


# ---------------------------------------------------------------------------------------- products

def load_interactions(con, *, schema: str = "marts") -> pl.DataFrame:
    """customer_id, product_id, category, event_date, kind (purchase | add | view) from fct_events;
    purchases are the products of Order Completed events (properties.products)."""
    return con.sql(f"""
        with purchased as (
            select customer_id, event_date,
                   unnest(from_json(json_extract(properties, '$.products'),
                                    '[{{"product_id": "VARCHAR", "category": "VARCHAR"}}]')) as item
            from {schema}.fct_events
            where event_name = 'Order Completed' and properties is not null
        )
        select customer_id, item.product_id as product_id, item.category as category, event_date, 'purchase' as kind
        from purchased where item.product_id is not null
        union all
        select customer_id, product_id, category, event_date,
               case event_name when 'Product Added' then 'add' else 'view' end as kind
        from {schema}.fct_events
        where event_name in ('Product Added', 'Product Viewed') and product_id is not null
    """).pl()


@dataclass
class ItemSimilarity:
    items: np.ndarray  # product ids, index = column
    similarity: np.ndarray  # (items x items) cosine, zero diagonal
    popularity: np.ndarray  # weighted interactions per item
    category: np.ndarray  # category per item (most frequent)


def _matrix(interactions: pl.DataFrame, items: np.ndarray | None = None):
    from scipy import sparse

    weighted = interactions.with_columns(
        pl.col("kind").replace_strict(INTERACTION_WEIGHTS, return_dtype=pl.Float64).alias("weight")
    ).group_by("customer_id", "product_id").agg(pl.col("weight").max())
    customers = np.sort(weighted["customer_id"].unique().to_numpy())
    if items is None:
        items = np.sort(weighted["product_id"].unique().to_numpy())
    weighted = weighted.filter(pl.col("product_id").is_in(list(items)))
    rows = np.searchsorted(customers, weighted["customer_id"].to_numpy())
    cols = np.searchsorted(items, weighted["product_id"].to_numpy())
    matrix = sparse.csr_matrix((weighted["weight"].to_numpy(), (rows, cols)), shape=(len(customers), len(items)))
    return customers, items, matrix


def fit_item_similarity(interactions: pl.DataFrame) -> ItemSimilarity:
    """Cosine similarity between items over customers' (weighted) interactions."""
    if interactions.height == 0:
        return ItemSimilarity(np.array([], dtype=object), np.zeros((0, 0)), np.zeros(0), np.array([], dtype=object))
    _, items, matrix = _matrix(interactions)
    binary = matrix.copy()
    binary.data = np.ones_like(binary.data)
    co = (binary.T @ binary).toarray().astype(float)
    norms = np.sqrt(np.diag(co))
    with np.errstate(divide="ignore", invalid="ignore"):
        similarity = np.where(np.outer(norms, norms) > 0, co / np.outer(norms, norms), 0.0)
    np.fill_diagonal(similarity, 0.0)
    popularity = np.asarray(matrix.sum(axis=0)).ravel()
    categories = (
        interactions.filter(pl.col("category").is_not_null())
        .group_by("product_id", "category").len()
        .sort(["product_id", "len", "category"], descending=[False, True, False])
        .unique("product_id", keep="first")
    )
    lookup = dict(zip(categories["product_id"].to_list(), categories["category"].to_list(), strict=True))
    category = np.array([lookup.get(i) for i in items], dtype=object)
    return ItemSimilarity(items=items, similarity=similarity, popularity=popularity, category=category)


def recommend(interactions: pl.DataFrame, customers: list[str] | np.ndarray, n: int = 5,
              model: ItemSimilarity | None = None, chunk: int = 20_000, category_weight: float = 1.0) -> pl.DataFrame:
    """customer_id, recommended_products (list of n product ids, best first) for each customer given.

    Score of item k for a customer = co-occurrence score / the customer's best co-occurrence score
    + category_weight x (share of the customer's interactions in k's category) x (k's popularity /
    its category's most popular item's)."""
    model = model or fit_item_similarity(interactions)
    customers = np.asarray(customers, dtype=object)
    if len(model.items) == 0:
        return pl.DataFrame({"customer_id": customers.astype(str), "recommended_products": [[] for _ in customers]},
                            schema={"customer_id": pl.String, "recommended_products": pl.List(pl.String)})
    known = interactions.filter(pl.col("customer_id").is_in(list(customers)))
    ids, _, matrix = _matrix(known, model.items) if known.height else (np.array([], dtype=object), model.items, None)
    bought = known.filter(pl.col("kind") == "purchase").select("customer_id", "product_id").unique()
    favourite = (
        known.filter(pl.col("category").is_not_null()).group_by("customer_id", "category").len()
        .sort(["customer_id", "len", "category"], descending=[False, True, False])
        .unique("customer_id", keep="first")
    )
    favourite_of = dict(zip(favourite["customer_id"].to_list(), favourite["category"].to_list(), strict=True))
    item_index = {item: k for k, item in enumerate(model.items)}
    bought_of: dict[str, list[int]] = {}
    for customer, product in bought.iter_rows():
        if product in item_index:
            bought_of.setdefault(customer, []).append(item_index[product])

    by_popularity = np.lexsort((model.items, -model.popularity))  # most popular first, ties by id
    fallback_by_category: dict[str, np.ndarray] = {}
    for k in by_popularity:
        fallback_by_category.setdefault(model.category[k], [])
        fallback_by_category[model.category[k]].append(k)
    row_of = {c: r for r, c in enumerate(ids)}
    n_items = len(model.items)
    categories = sorted({c for c in model.category if c is not None})
    item_category = np.zeros((n_items, max(len(categories), 1)))
    for k, c in enumerate(model.category):
        if c is not None:
            item_category[k, categories.index(c)] = 1.0
    best_in_category = (item_category * model.popularity[:, None]).max(axis=0)
    popularity_in_category = model.popularity / np.maximum(item_category @ best_in_category, 1e-12)
    tie_break = np.argsort(np.argsort(model.items))  # rank of the product id, for deterministic ties
    out: list[list[str]] = []
    for start in range(0, len(customers), chunk):
        part = customers[start:start + chunk]
        rows = np.array([row_of.get(c, -1) for c in part], dtype=np.int64)
        scores = np.zeros((len(part), n_items))
        has_history = rows >= 0
        if has_history.any() and matrix is not None:
            history = matrix[rows[has_history]]
            cooc = np.asarray(history @ model.similarity)
            cooc /= np.maximum(cooc.max(axis=1, keepdims=True), 1e-12)
            affinity = np.asarray(history @ item_category)
            affinity /= np.maximum(affinity.sum(axis=1, keepdims=True), 1e-12)
            scores[has_history] = cooc + category_weight * (affinity @ item_category.T) * popularity_in_category
        for i, customer in enumerate(part):
            for k in bought_of.get(customer, ()):
                scores[i, k] = -np.inf
        # best first: higher score, then lower product id
        order = np.lexsort((np.broadcast_to(tie_break, scores.shape), -scores), axis=1)
        top = order[:, :n]
        for i, customer in enumerate(part):
            ranked = [k for k in top[i] if scores[i, k] > 0]
            if len(ranked) < n:
                taken = set(ranked) | set(bought_of.get(customer, ()))
                for pool in (fallback_by_category.get(favourite_of.get(customer), []), by_popularity):
                    for k in pool:
                        if len(ranked) >= n:
                            break
                        if k not in taken:
                            ranked.append(k)
                            taken.add(k)
            out.append([str(model.items[k]) for k in ranked[:n]])
    return pl.DataFrame({"customer_id": [str(c) for c in customers], "recommended_products": out},
                        schema={"customer_id": pl.String, "recommended_products": pl.List(pl.String)})


def hit_rate(recommendations: pl.DataFrame, future_purchases: pl.DataFrame) -> dict[str, float]:
    """Among customers who bought in the future window: share with at least one recommended item bought."""
    bought = future_purchases.select("customer_id", "product_id").unique()
    buyers = bought["customer_id"].unique()
    recs = recommendations.filter(pl.col("customer_id").is_in(buyers.implode())).explode("recommended_products")
    hits = recs.join(bought, left_on=["customer_id", "recommended_products"], right_on=["customer_id", "product_id"])
    return {"buyers": int(len(buyers)), "hit_rate": float(hits["customer_id"].n_unique() / len(buyers)) if len(buyers) else 0.0}
