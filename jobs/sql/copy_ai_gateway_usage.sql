-- Copies new rows of system.ai_gateway.usage (the new AI Gateway's usage table, Beta) into the
-- table the job parameter :gateway_usage_table names (catalog.schema.table), which the binary
-- reads as uc://<that table> (`[inputs] gateway_usage`) and the Spark mode reads by name. Runs
-- only when that parameter is set (the condition task before it): a workspace without the new
-- gateway has no system.ai_gateway schema.
--
-- Incremental and idempotent, like copy_system_tables.sql: each run reads the source from the
-- newest copied event_time minus :late_arrival_days and MERGEs on the row's key, inserting only
-- rows the copy does not hold; new source columns are added (WITH SCHEMA EVOLUTION). The key is
-- invocation_id (one row per invocation); a row without one is matched on its request_id,
-- event_time and status_code.
--
-- A model service's Beta payload table (<prefix>_payload, :gateway_payload_table) is an ordinary
-- Unity Catalog table of your catalog: the binary and the Spark mode read it in place, no copy.

DECLARE OR REPLACE VARIABLE ai_gateway_since TIMESTAMP;

CREATE TABLE IF NOT EXISTS IDENTIFIER(:gateway_usage_table)
AS SELECT * FROM system.ai_gateway.usage WHERE false;

SET VAR ai_gateway_since = (
  SELECT coalesce(max(event_time) - make_dt_interval(CAST(:late_arrival_days AS INT)), TIMESTAMP'1970-01-01')
  FROM IDENTIFIER(:gateway_usage_table)
);

MERGE WITH SCHEMA EVOLUTION INTO IDENTIFIER(:gateway_usage_table) AS t
USING (
  SELECT * FROM system.ai_gateway.usage
  WHERE event_time >= ai_gateway_since
  QUALIFY invocation_id IS NULL
    OR row_number() OVER (PARTITION BY invocation_id ORDER BY event_time) = 1
) AS s
ON t.invocation_id <=> s.invocation_id
  AND (s.invocation_id IS NOT NULL
    OR (t.request_id <=> s.request_id AND t.event_time = s.event_time AND t.status_code <=> s.status_code))
WHEN NOT MATCHED THEN INSERT *;

-- What the copy holds now (shown in the task's output).
SELECT
  (SELECT count(*) FROM IDENTIFIER(:gateway_usage_table)) AS ai_gateway_usage_rows,
  (SELECT max(event_time) FROM IDENTIFIER(:gateway_usage_table)) AS newest_event_time;
