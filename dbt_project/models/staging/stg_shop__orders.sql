-- One row per order: the latest version of each order of the shop's export. raw.orders keeps one
-- row per (order_id, status) — a completed order refunded a week later arrives again, in a later
-- landing day, with status 'refunded'. The latest version wins: latest landing day, then
-- refunded > cancelled > completed, then the last line read.
with

source as (

    select * from {{ source('shop', 'orders') }}

),

versions as (

    select
        *,
        row_number() over (
            partition by order_id
            order by
                landing_date desc,
                case lower(status) when 'refunded' then 3 when 'cancelled' then 2 else 1 end desc,
                source_file desc,
                line_no desc
        ) as version_rank,
        count(*) over (partition by order_id) as version_count,
        min(landing_date) over (partition by order_id) as first_landing_date
    from source

),

renamed as (

    select
        -- ids
        order_id,
        {{ nullif_blank('user_id') }} as user_id,

        -- order (latest version)
        lower(status) as status,
        upper(currency) as currency,
        cast(revenue as decimal(18, 2)) as revenue,
        item_count,
        version_count,

        -- when (UTC)
        ordered_at,
        cast(ordered_at as date) as ordered_date,

        -- lineage
        first_landing_date,
        landing_date as status_landing_date,
        loaded_at

    from versions
    where version_rank = 1

)

select * from renamed
