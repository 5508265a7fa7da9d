-- Identity stitching: every anonymous id seen anywhere → one customer id.
--
-- Links between an anonymous id (device cookie) and a user id (member) come from
--   alias calls     previous_id → user_id                     (priority 1)
--   identify calls  anonymous_id + user_id                     (priority 2)
--   any event       carrying both anonymous_id and user_id     (priority 3, its first occurrence)
-- Rule for an anonymous id linked to several user ids (a shared device): the FIRST link wins —
-- earliest link time, then alias before identify before event, then the smallest user id. The
-- first member seen on a device is the likeliest owner of its anonymous history (the visits
-- before signing up), and a later login on the same device never re-attributes history already
-- reported. Events that carry a user id always belong to that user (fct_events), whatever this
-- graph says; the graph only decides for anonymous-only events.
-- Anonymous ids with no link keep a stable key of their own: 'anon:' || anonymous_id.
--
-- Incremental (delete+insert on anonymous_id): a run recomputes, from their whole history, the
-- anonymous ids seen in the events and identify/alias calls loaded since the latest load it has
-- processed (source_loaded_at). A row depends only on the calls that mention its anonymous id.
{{
    config(
        materialized=scoped_materialization(),
        unique_key='anonymous_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}
with

{% if is_incremental() %}

touched as (

    select anonymous_id
    from {{ ref('stg_segment__events') }}
    where loaded_at > {{ incremental_watermark() }} and anonymous_id is not null
    union
    select anonymous_id
    from {{ ref('stg_segment__identifies') }}
    where loaded_at > {{ incremental_watermark() }} and anonymous_id is not null
    union
    select previous_id
    from {{ ref('stg_segment__identifies') }}
    where loaded_at > {{ incremental_watermark() }} and previous_id is not null and call_type = 'alias'

),

identifies as (

    select *
    from {{ ref('stg_segment__identifies') }}
    where anonymous_id in (select anonymous_id from touched)
        or previous_id in (select anonymous_id from touched)

),

events as (

    select anonymous_id, user_id, event_at, loaded_at
    from {{ ref('stg_segment__events') }}
    where anonymous_id in (select anonymous_id from touched)

),

{% else %}

identifies as (

    select * from {{ ref('stg_segment__identifies') }}

),

events as (

    select anonymous_id, user_id, event_at, loaded_at
    from {{ ref('stg_segment__events') }}
    where anonymous_id is not null

),

{% endif %}

links as (

    select
        previous_id as anonymous_id,
        user_id,
        identified_at as linked_at,
        1 as link_priority,
        'alias' as link_source
    from identifies
    where call_type = 'alias' and previous_id is not null and user_id is not null

    union all

    select
        anonymous_id,
        user_id,
        identified_at as linked_at,
        2 as link_priority,
        'identify' as link_source
    from identifies
    where call_type = 'identify' and anonymous_id is not null and user_id is not null

    union all

    select
        anonymous_id,
        user_id,
        min(event_at) as linked_at,
        3 as link_priority,
        'event' as link_source
    from events
    where user_id is not null
    group by anonymous_id, user_id

),

ranked_links as (

    select
        *,
        row_number() over (
            partition by anonymous_id
            order by linked_at, link_priority, user_id
        ) as link_rank
    from links

),

link_counts as (

    select anonymous_id, count(distinct user_id) as linked_user_count
    from links
    group by anonymous_id

),

sightings as (

    select anonymous_id, event_at as seen_at, loaded_at from events

    union all

    select anonymous_id, identified_at as seen_at, loaded_at from identifies where anonymous_id is not null

    union all

    select previous_id as anonymous_id, identified_at as seen_at, loaded_at
    from identifies
    where call_type = 'alias' and previous_id is not null

),

anonymous_ids as (

    select
        anonymous_id,
        min(seen_at) as first_seen_at,
        max(seen_at) as last_seen_at,
        max(loaded_at) as source_loaded_at
    from sightings
    group by anonymous_id

),

final as (

    select
        anonymous_ids.anonymous_id,
        coalesce(ranked_links.user_id, {{ anonymous_customer_id('anonymous_ids.anonymous_id') }}) as customer_id,
        ranked_links.user_id,
        ranked_links.user_id is not null as is_linked,
        ranked_links.link_source,
        ranked_links.linked_at,
        coalesce(link_counts.linked_user_count, 0) as linked_user_count,
        coalesce(link_counts.linked_user_count, 0) > 1 as is_conflicted,
        anonymous_ids.first_seen_at,
        anonymous_ids.last_seen_at,
        anonymous_ids.source_loaded_at,
        {{ run_started_at_sql() }} as processed_at

    from anonymous_ids
    left join ranked_links
        on anonymous_ids.anonymous_id = ranked_links.anonymous_id
        and ranked_links.link_rank = 1
    left join link_counts
        on anonymous_ids.anonymous_id = link_counts.anonymous_id
    {%- if is_incremental() %}
    where anonymous_ids.anonymous_id in (select anonymous_id from touched)
    {%- endif %}

)

select * from final
