-- One row per identify or alias call, traits flattened and typed.
with

source as (

    select * from {{ source('segment', 'identifies') }}

),

renamed as (

    select
        -- ids
        message_id as identify_id,
        type as call_type,
        {{ nullif_blank('user_id') }} as user_id,
        {{ nullif_blank('anonymous_id') }} as anonymous_id,
        {{ nullif_blank('previous_id') }} as previous_id,

        -- when (UTC)
        event_at as identified_at,

        -- traits (absent trait → NULL: a later identify that omits a trait does not erase it)
        {{ nullif_blank(json_extract_string('traits', 'email')) }} as email,
        lower({{ nullif_blank(json_extract_string('traits', 'email')) }}) as email_normalized,
        {{ nullif_blank(json_extract_string('traits', 'phone')) }} as phone,
        {{ normalize_phone_e164(nullif_blank(json_extract_string('traits', 'phone'))) }} as phone_e164,
        {{ nullif_blank(json_extract_string('traits', 'name')) }} as name,
        {{ nullif_blank(json_extract_string('traits', 'timezone')) }} as timezone,
        {{ dbt.safe_cast(json_extract_string('traits', 'consent_email'), dbt.type_boolean()) }} as consent_email,
        {{ dbt.safe_cast(json_extract_string('traits', 'consent_sms'), dbt.type_boolean()) }} as consent_sms,
        {{ dbt.safe_cast(json_extract_string('traits', 'consent_push'), dbt.type_boolean()) }} as consent_push,
        {{ dbt.safe_cast(json_extract_string('traits', 'consent_kakao'), dbt.type_boolean()) }} as consent_kakao,
        {{ dbt.safe_cast(json_extract_string('traits', 'consent_night'), dbt.type_boolean()) }} as consent_night,
        {{ parse_timestamp_utc(nullif_blank(json_extract_string('traits', 'created_at'))) }} as account_created_at,

        -- lineage
        landing_date,
        loaded_at

    from source

)

select * from renamed
