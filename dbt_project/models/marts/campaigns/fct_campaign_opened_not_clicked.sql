{#- Follow-up cohort: variant customers who opened the campaign's message and never clicked it. -#}
{{ config(materialized='table') }}

select
    campaign,
    customer_id,
    arm,
    assigned_at,
    sent_at,
    opened_at,
    is_converted
from {{ ref('int_campaign_exposures_joined') }}
where not is_holdout
  and is_opened
  and not is_clicked
