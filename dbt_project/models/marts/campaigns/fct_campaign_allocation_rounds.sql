{#- Per campaign and allocation round: the intended split (holdout share + variant weights) and how many
    customers were assigned in that round — what the sample-ratio check of a bandit needs
    (intended count of an arm = Σ over rounds of round exposures × round weight). -#}
{{ config(materialized='table') }}

with

rounds as (

    select * from {{ ref('stg_activations__allocation_rounds') }}

),

round_exposures as (

    select campaign, allocation_round, count(*) as exposed
    from {{ ref('stg_activations__assignments') }}
    group by campaign, allocation_round

),

joined as (

    -- full join: a round with assignments but no allocation row (or the reverse) stays visible
    select
        coalesce(rounds.campaign, round_exposures.campaign) as campaign,
        coalesce(rounds.allocation_round, round_exposures.allocation_round) as allocation_round,
        rounds.decided_at,
        rounds.allocation_mode,
        rounds.holdout_share,
        rounds.variant_weights,
        coalesce(round_exposures.exposed, 0) as exposed,
        rounds.campaign is not null as has_allocation
    from rounds
    full outer join round_exposures
        on rounds.campaign = round_exposures.campaign
        and rounds.allocation_round = round_exposures.allocation_round

)

select
    cast(campaign as {{ dbt.type_string() }}) as campaign,
    cast(allocation_round as {{ dbt.type_int() }}) as allocation_round,
    decided_at,
    cast(allocation_mode as {{ dbt.type_string() }}) as allocation_mode,
    cast(holdout_share as {{ analytics_type_double() }}) as holdout_share,
    cast(variant_weights as {{ dbt.type_string() }}) as variant_weights,
    cast(exposed as {{ dbt.type_bigint() }}) as exposed,
    has_allocation
from joined
