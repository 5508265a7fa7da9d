{#- sql_string_list(['a', "b'c"]) → 'a', 'b''c'   (for IN lists built from vars) -#}
{% macro sql_string_list(values) -%}
    {%- set quoted = [] -%}
    {%- for value in values -%}
        {%- do quoted.append("'" ~ (value | string | replace("'", "''")) ~ "'") -%}
    {%- endfor -%}
    {{- quoted | join(', ') if quoted else 'null' -}}
{%- endmacro %}


{#- The customer key of a visitor never linked to a member: 'anon:' || anonymous_id. -#}
{% macro anonymous_customer_id(anonymous_id) -%}
    {{ dbt.concat(["'anon:'", anonymous_id]) }}
{%- endmacro %}


{#- nullif_blank(expression): NULL for NULL, '' and whitespace-only text. -#}
{% macro nullif_blank(expression) -%}
    nullif(trim({{ expression }}), '')
{%- endmacro %}


{#- normalize_phone_e164(text): Korean-style phone numbers ('010-1234-5678', '01012345678',
    '+82 10-1234-5678', '010 1234 5678') as E.164 ('+821012345678'). Separators (space, '-', '.',
    parentheses) are removed; a national number starting with 0 gets the country code of var
    `default_phone_country_code` (82) instead of its 0; a number starting with + is kept.
    Anything else that is not all digits gives NULL. -#}
{% macro normalize_phone_e164(text) -%}
    {%- set country = var('default_phone_country_code', '82') | string -%}
    {%- set digits -%}
        replace(replace(replace(replace(replace(trim({{ text }}), ' ', ''), '-', ''), '.', ''), '(', ''), ')', '')
    {%- endset -%}
    case
        when {{ digits }} like '+%' then {{ digits }}
        when {{ digits }} like '0%' then {{ dbt.concat(["'+" ~ country ~ "'", dbt.right(digits, dbt.length(digits) ~ ' - 1')]) }}
        when {{ digits }} <> '' then {{ dbt.concat(["'+'", digits]) }}
    end
{%- endmacro %}


{#- score_by_thresholds(expression, thresholds, higher_is_better=true): a 1..5 score.
    higher_is_better: thresholds are the lower bounds of scores 2, 3, 4, 5 (ascending).
    otherwise (recency): thresholds are the upper bounds of scores 5, 4, 3, 2 (ascending).
    NULL expression → NULL score. -#}
{% macro score_by_thresholds(expression, thresholds, higher_is_better=true) -%}
    {%- if thresholds | length != 4 -%}
        {{ exceptions.raise_compiler_error("score_by_thresholds: exactly 4 ascending thresholds are needed, got " ~ thresholds) }}
    {%- endif -%}
    case
        when {{ expression }} is null then null
    {%- if higher_is_better %}
        {%- for bound in thresholds | reverse %}
        when {{ expression }} >= {{ bound }} then {{ 5 - loop.index0 }}
        {%- endfor %}
    {%- else %}
        {%- for bound in thresholds %}
        when {{ expression }} <= {{ bound }} then {{ 5 - loop.index0 }}
        {%- endfor %}
    {%- endif %}
        else 1
    end
{%- endmacro %}
