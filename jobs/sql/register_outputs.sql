-- Registers the binary's output Delta tables (written by delta-rs under :output_location, which
-- cannot create Unity Catalog tables) as external tables <catalog>.<schema>.<output>.
-- CREATE TABLE IF NOT EXISTS: a table already registered is left as it is; Databricks reads
-- each table's schema and data from its Delta log, so later runs need no new registration.
--
-- Named parameter markers are not allowed in LOCATION (a DDL clause), so each statement is
-- built as a string and run with EXECUTE IMMEDIATE; the location is checked first and the
-- names are quoted as identifiers.

DECLARE OR REPLACE VARIABLE location STRING;
DECLARE OR REPLACE VARIABLE create_table STRING;
DECLARE OR REPLACE VARIABLE stmt STRING;

-- chr(39) is the quote, so no quote escaping inside literals can go wrong.
SET VAR location = regexp_replace(:output_location, '/+$', '');
SELECT assert_true(
  location RLIKE '^(s3|abfss|gs|r2)://[^/]+' AND instr(location, chr(39)) = 0 AND instr(location, chr(92)) = 0,
  'output_location must be a cloud URI under an external location (s3://, abfss://, gs://, r2://) without quotes'
);
SET VAR create_table = 'CREATE TABLE IF NOT EXISTS `' || replace(:catalog, '`', '``') || '`.`'
  || replace(:schema, '`', '``') || '`.{table} LOCATION ' || chr(39) || location || '/{table}' || chr(39);

SET VAR stmt = replace(create_table, '{table}', 'daily_spend');
EXECUTE IMMEDIATE stmt;
SET VAR stmt = replace(create_table, '{table}', 'hourly_errors');
EXECUTE IMMEDIATE stmt;
SET VAR stmt = replace(create_table, '{table}', 'reconciliation');
EXECUTE IMMEDIATE stmt;
SET VAR stmt = replace(create_table, '{table}', 'data_quality');
EXECUTE IMMEDIATE stmt;
SET VAR stmt = replace(create_table, '{table}', 'spend_forecast');
EXECUTE IMMEDIATE stmt;
SET VAR stmt = replace(create_table, '{table}', 'alerts');
EXECUTE IMMEDIATE stmt;
SET VAR stmt = replace(create_table, '{table}', 'rate_limit_recommendations');
EXECUTE IMMEDIATE stmt;
SET VAR stmt = replace(create_table, '{table}', 'minute_demand');
EXECUTE IMMEDIATE stmt;
SET VAR stmt = replace(create_table, '{table}', 'focus_costs');
EXECUTE IMMEDIATE stmt;
SET VAR stmt = replace(create_table, '{table}', 'pricing_what_if');
EXECUTE IMMEDIATE stmt;
SET VAR stmt = replace(create_table, '{table}', 'cache_savings');
EXECUTE IMMEDIATE stmt;
SET VAR stmt = replace(create_table, '{table}', 'computed_dates');
EXECUTE IMMEDIATE stmt;

-- The binary writes the trace outputs only when the job has a traces table.
SET VAR stmt = CASE WHEN :traces_table = '' THEN 'SELECT 0 AS trace_outputs_registered'
  ELSE replace(create_table, '{table}', 'trace_coverage') END;
EXECUTE IMMEDIATE stmt;
SET VAR stmt = CASE WHEN :traces_table = '' THEN 'SELECT 0 AS trace_outputs_registered'
  ELSE replace(create_table, '{table}', 'trace_spend') END;
EXECUTE IMMEDIATE stmt;
