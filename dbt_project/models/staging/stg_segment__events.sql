-- One row per track/page/screen/group call (raw.events is already deduplicated on messageId).
-- Renames, types and flattens the JSON the models use; `properties` stays available as text.
with

source as (

    select * from {{ source('segment', 'events') }}

),

renamed as (

    select
        -- ids
        message_id as event_id,
        {{ nullif_blank('user_id') }} as user_id,
        {{ nullif_blank('anonymous_id') }} as anonymous_id,

        -- what happened
        type as event_type,
        case
            when type = 'track' then event
            when type = 'page' then 'Page Viewed'
            when type = 'screen' then 'Screen Viewed'
            when type = 'group' then 'Group'
        end as event_name,
        page_name,

        -- when (UTC)
        event_at,
        cast(event_at as date) as event_date,
        original_timestamp as client_event_at,
        received_at,

        -- context
        {{ nullif_blank(json_extract_string('context', 'page.path')) }} as page_path,
        {{ nullif_blank(json_extract_string('context', 'page.url')) }} as page_url,
        {{ nullif_blank(json_extract_string('context', 'page.referrer')) }} as referrer,
        {{ nullif_blank(json_extract_string('context', 'page.title')) }} as page_title,
        {{ nullif_blank(json_extract_string('context', 'campaign.source')) }} as utm_source,
        {{ nullif_blank(json_extract_string('context', 'campaign.medium')) }} as utm_medium,
        {{ nullif_blank(json_extract_string('context', 'campaign.name')) }} as utm_campaign,
        {{ nullif_blank(json_extract_string('context', 'campaign.term')) }} as utm_term,
        {{ nullif_blank(json_extract_string('context', 'campaign.content')) }} as utm_content,
        lower({{ nullif_blank(json_extract_string('context', 'device.type')) }}) as device_type,
        {{ nullif_blank(json_extract_string('context', 'timezone')) }} as timezone,

        -- properties
        {{ nullif_blank(json_extract_string('properties', 'product_id')) }} as product_id,
        {{ nullif_blank(json_extract_string('properties', 'category')) }} as category,
        {{ nullif_blank(json_extract_string('properties', 'order_id')) }} as order_id,
        {{ dbt.safe_cast(json_extract_string('properties', 'revenue'), 'decimal(18, 2)') }} as revenue,
        {{ nullif_blank(json_extract_string('properties', 'campaign_id')) }} as message_campaign_id,
        {{ json_to_text('properties') }} as properties,

        -- lineage
        landing_date,
        loaded_at

    from source

)

select * from renamed
