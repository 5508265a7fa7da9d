-- Current traits of every member (one row per user id seen in identify or alias calls).
-- Latest identify wins, trait by trait: each trait takes its value from the latest identify call
-- that carries it (Segment's merge semantics), so a call that omits a trait does not erase it,
-- while an explicit value — a consent withdrawn (false) included — replaces the previous one.
-- Traits are always the latest known, whatever var as_of_date says: a consent withdrawal must
-- never be ignored because a report looks at an earlier date.
{%- set text_traits = ['email', 'email_normalized', 'phone', 'phone_e164', 'name', 'timezone'] %}
{%- set boolean_traits = ['consent_email', 'consent_sms', 'consent_push', 'consent_kakao', 'consent_night'] %}
{%- set timestamp_traits = ['account_created_at'] %}
{%- set all_traits = text_traits + boolean_traits + timestamp_traits %}
{#- Incremental (delete+insert on customer_id): a run recomputes the members with identify or alias
    calls loaded since the latest load it processed (source_loaded_at). -#}
{{
    config(
        materialized=scoped_materialization(),
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}
with

{%- if is_incremental() %}

changed_members as (

    select user_id as customer_id
    from {{ ref('stg_segment__identifies') }}
    where loaded_at > {{ incremental_watermark() }} and user_id is not null

),
{%- endif %}

history as (

    select * from {{ ref('int_customer_traits_history') }}
    {%- if is_incremental() %}
    where customer_id in (select customer_id from changed_members)
    {%- endif %}

),

identity_calls as (

    select
        user_id as customer_id,
        identified_at,
        call_type,
        loaded_at
    from {{ ref('stg_segment__identifies') }}
    where user_id is not null
    {%- if is_incremental() %}
      and user_id in (select customer_id from changed_members)
    {%- endif %}

),

ranked as (

    select
        history.*,
        {%- for trait in all_traits %}
        row_number() over (
            partition by customer_id
            order by case when {{ trait }} is null then 1 else 0 end, valid_from desc, identify_id desc
        ) as {{ trait }}_rank{{ ',' if not loop.last }}
        {%- endfor %}
    from history

),

latest_traits as (

    select
        customer_id,
        {%- for trait in text_traits + timestamp_traits %}
        max(case when {{ trait }}_rank = 1 then {{ trait }} end) as {{ trait }},
        {%- endfor %}
        {%- for trait in boolean_traits %}
        bool_or(case when {{ trait }}_rank = 1 then {{ trait }} end) as {{ trait }},
        {%- endfor %}
        count(*) as identify_count,
        max(valid_from) as traits_updated_at
    from ranked
    group by customer_id

),

identity_facts as (

    select
        customer_id,
        min(identified_at) as first_identified_at,
        max(identified_at) as last_identified_at,
        max(loaded_at) as source_loaded_at
    from identity_calls
    group by customer_id

),

final as (

    select
        identity_facts.customer_id,
        {%- for trait in all_traits %}
        latest_traits.{{ trait }},
        {%- endfor %}
        coalesce(latest_traits.identify_count, 0) as identify_count,
        latest_traits.traits_updated_at,
        identity_facts.first_identified_at,
        identity_facts.last_identified_at,
        identity_facts.source_loaded_at,
        {{ run_started_at_sql() }} as processed_at

    from identity_facts
    left join latest_traits
        on identity_facts.customer_id = latest_traits.customer_id

)

select * from final
