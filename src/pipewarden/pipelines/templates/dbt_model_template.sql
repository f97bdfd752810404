-- __PW_NAME__: an incremental model over the table pipewarden loads after its sentinel,
-- guardian and anomaly checks. Written by `pipewarden scaffold dbt`.
-- Load first with `pipewarden run __PW_CONFIG_REL__`, then `dbt run -s __PW_NAME__`.
{{
    config(
        materialized='incremental',
        unique_key='__PW_UNIQUE_KEY__',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        tags=['pipewarden']
    )
}}

with source_rows as (

    select *
    from {{ source('pipewarden', '__PW_NAME__') }}

    {% if is_incremental() %}
    -- only rows newer than the newest one this model already holds
    where __PW_UPDATED_AT__ > (select max(__PW_UPDATED_AT__) from {{ this }})
    {% endif %}

)

select * from source_rows
