-- computed_dates: the ledger of the dates runs have written, one row per window day with the
-- price version the run used. It is written after every other output. A later run takes the
-- history days listed here with its own price version from daily_spend and minute_demand
-- instead of reading the inputs again. Column definitions: docs/OUTPUTS.md#computed_dates.
SELECT DISTINCT
  evaluated_date AS usage_date,
  ${price_version} AS price_version
FROM alert_calendar
ORDER BY usage_date
