-- Trait history of every member: one row per identify call, valid from its time until the next
-- identify call of the same user (valid_to NULL for the latest). Traits a call omits are NULL
-- in its row; int_customer_traits resolves the current value of each trait.
-- Incremental (delete+insert on customer_id): a run rebuilds the history of the members with identify
-- calls loaded since the latest load in the table (loaded_at).
{{
    config(
        materialized=scoped_materialization(),
        unique_key='customer_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}
with

identifies as (

    select * from {{ ref('stg_segment__identifies') }}
    where call_type = 'identify' and user_id is not null
    {%- if is_incremental() %}
      and user_id in (
        select user_id from {{ ref('stg_segment__identifies') }}
        where loaded_at > {{ incremental_watermark('loaded_at') }}
      )
    {%- endif %}

),

final as (

    select
        identify_id,
        user_id as customer_id,
        anonymous_id,
        identified_at as valid_from,
        lead(identified_at) over (
            partition by user_id order by identified_at, identify_id
        ) as valid_to,
        row_number() over (
            partition by user_id order by identified_at desc, identify_id desc
        ) = 1 as is_latest,
        email,
        email_normalized,
        phone,
        phone_e164,
        name,
        timezone,
        consent_email,
        consent_sms,
        consent_push,
        consent_kakao,
        consent_night,
        account_created_at,
        landing_date,
        loaded_at,
        {{ run_started_at_sql() }} as processed_at

    from identifies

)

select * from final
