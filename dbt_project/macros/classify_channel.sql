{#-
    Acquisition / session channel from UTM parameters and the referrer, first matching rule wins
    (lists in var `channels` of dbt_project.yml; values compared lower-cased):

      1. email             utm_medium in email_mediums
      2. kakao             utm_source in kakao_sources or utm_medium in kakao_mediums
      3. push              utm_medium in push_mediums
      4. price_comparison  utm_source in price_comparison_sources or utm_medium in price_comparison_mediums
      5. paid_social       utm_medium in paid_social_mediums, or utm_source in social_sources with a
                           utm_medium in paid_mediums
      6. paid_search       utm_medium in paid_search_mediums
      7. other_campaign    any other UTM-tagged visit (utm_source or utm_medium present)
      -- no UTM: the referrer decides
      8. direct            no referrer, or a referrer on the shop's own site (site_hosts)
      9. price_comparison  referrer host in price_comparison_hosts
     10. organic_search    referrer host in search_hosts
     11. referral          any other referrer (blogs, cafés, untagged social links, ...)

    A host matches a listed domain exactly or as a sub-domain (google.com matches www.google.com).
-#}
{% macro classify_channel(utm_source, utm_medium, referrer) -%}
    {%- set c = var('channels') -%}
    {%- set source = 'lower(' ~ nullif_blank(utm_source) ~ ')' -%}
    {%- set medium = 'lower(' ~ nullif_blank(utm_medium) ~ ')' -%}
    {%- set host = url_host(referrer) -%}
    case
        when {{ medium }} in ({{ sql_string_list(c.email_mediums) }}) then 'email'
        when {{ source }} in ({{ sql_string_list(c.kakao_sources) }})
            or {{ medium }} in ({{ sql_string_list(c.kakao_mediums) }}) then 'kakao'
        when {{ medium }} in ({{ sql_string_list(c.push_mediums) }}) then 'push'
        when {{ source }} in ({{ sql_string_list(c.price_comparison_sources) }})
            or {{ medium }} in ({{ sql_string_list(c.price_comparison_mediums) }}) then 'price_comparison'
        when {{ medium }} in ({{ sql_string_list(c.paid_social_mediums) }})
            or ({{ source }} in ({{ sql_string_list(c.social_sources) }})
                and {{ medium }} in ({{ sql_string_list(c.paid_mediums) }})) then 'paid_social'
        when {{ medium }} in ({{ sql_string_list(c.paid_search_mediums) }}) then 'paid_search'
        when {{ source }} is not null or {{ medium }} is not null then 'other_campaign'
        when {{ host }} is null or {{ host_matches(host, c.site_hosts) }} then 'direct'
        when {{ host_matches(host, c.price_comparison_hosts) }} then 'price_comparison'
        when {{ host_matches(host, c.search_hosts) }} then 'organic_search'
        else 'referral'
    end
{%- endmacro %}


{#- Every value classify_channel can return (accepted_values tests, docs). -#}
{% macro channel_names() -%}
    {{ return(['direct', 'organic_search', 'price_comparison', 'paid_social', 'paid_search', 'email',
               'kakao', 'push', 'referral', 'other_campaign']) }}
{%- endmacro %}


{#- url_host('https://www.Google.com/search?q=1') → 'www.google.com'; NULL without '://'. -#}
{% macro url_host(url) -%}
    case
        when {{ url }} like '%://%'
            then {{ nullif_blank('lower(' ~ dbt.split_part(url, "'/'", 3) ~ ')') }}
    end
{%- endmacro %}


{% macro host_matches(host, domains) -%}
    {%- set parts = [] -%}
    {%- for domain in domains -%}
        {%- set d = domain | lower | replace("'", "''") -%}
        {%- do parts.append(host ~ " = '" ~ d ~ "' or " ~ host ~ " like '%." ~ d ~ "'") -%}
    {%- endfor -%}
    ({{ parts | join(' or ') if parts else 'false' }})
{%- endmacro %}
