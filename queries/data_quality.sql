-- data_quality: one row per (usage_date, table_name, check_name) for each day of the window on
-- which the table has rows. Column definitions and checks: docs/OUTPUTS.md#data_quality.
SELECT usage_date, table_name, check_name, failed_rows, table_rows, share
FROM data_quality_checks
ORDER BY usage_date, table_name, check_name
