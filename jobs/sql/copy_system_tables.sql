-- Copies new rows of system.serving.endpoint_usage and system.serving.served_entities into
-- tables of the job's schema, which the binary reads as uc://<catalog>.<schema>.<table>.
--
-- Incremental and idempotent: each copy reads the source from the newest row it already has
-- minus :late_arrival_days (rows can land late) and MERGEs on the natural key, inserting only
-- rows it does not hold; a rerun adds nothing twice. New source columns are added to the copy
-- (WITH SCHEMA EVOLUTION). The first run copies everything the system tables retain.
--
-- Parameters are named parameter markers (:catalog, ...), bound from the job parameters that
-- Databricks pushes down to SQL tasks; IDENTIFIER() turns them into table names, so no value is
-- pasted into the SQL text.

DECLARE OR REPLACE VARIABLE usage_copy STRING;
DECLARE OR REPLACE VARIABLE entities_copy STRING;
DECLARE OR REPLACE VARIABLE usage_since TIMESTAMP;
DECLARE OR REPLACE VARIABLE entities_since TIMESTAMP;

SET VAR usage_copy = :catalog || '.' || :schema || '.endpoint_usage';
SET VAR entities_copy = :catalog || '.' || :schema || '.served_entities';

CREATE TABLE IF NOT EXISTS IDENTIFIER(usage_copy)
AS SELECT * FROM system.serving.endpoint_usage WHERE false;

CREATE TABLE IF NOT EXISTS IDENTIFIER(entities_copy)
AS SELECT * FROM system.serving.served_entities WHERE false;

-- endpoint_usage: one row per request, keyed by databricks_request_id. A row without one (the
-- data_quality output counts them) is matched on its time, requester, entity and status instead.
SET VAR usage_since = (
  SELECT coalesce(max(request_time) - make_dt_interval(CAST(:late_arrival_days AS INT)), TIMESTAMP'1970-01-01')
  FROM IDENTIFIER(usage_copy)
);

MERGE WITH SCHEMA EVOLUTION INTO IDENTIFIER(usage_copy) AS t
USING (
  SELECT * FROM system.serving.endpoint_usage
  WHERE request_time >= usage_since
  QUALIFY databricks_request_id IS NULL
    OR row_number() OVER (PARTITION BY databricks_request_id ORDER BY request_time) = 1
) AS s
ON t.databricks_request_id <=> s.databricks_request_id
  AND (s.databricks_request_id IS NOT NULL
    OR (t.request_time = s.request_time AND t.requester <=> s.requester
      AND t.served_entity_id <=> s.served_entity_id AND t.status_code <=> s.status_code))
WHEN NOT MATCHED THEN INSERT *;

-- served_entities: one row per configuration change, keyed by (served_entity_id, change_time).
SET VAR entities_since = (
  SELECT coalesce(max(change_time) - make_dt_interval(CAST(:late_arrival_days AS INT)), TIMESTAMP'1970-01-01')
  FROM IDENTIFIER(entities_copy)
);

MERGE WITH SCHEMA EVOLUTION INTO IDENTIFIER(entities_copy) AS t
USING (
  SELECT * FROM system.serving.served_entities
  WHERE change_time >= entities_since
  QUALIFY row_number() OVER (PARTITION BY served_entity_id, change_time ORDER BY change_time) = 1
) AS s
ON t.served_entity_id = s.served_entity_id AND t.change_time = s.change_time
WHEN NOT MATCHED THEN INSERT *;

-- What the copies hold now (shown in the task's output).
SELECT
  (SELECT count(*) FROM IDENTIFIER(usage_copy)) AS endpoint_usage_rows,
  (SELECT max(request_time) FROM IDENTIFIER(usage_copy)) AS newest_request_time,
  (SELECT count(*) FROM IDENTIFIER(entities_copy)) AS served_entities_rows;
