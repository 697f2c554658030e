-- payload: the inference table (<prefix>_payload, read as payload_source) over the same range
-- as usage (from ${inputs_start}): costs of history days split tokens into categories from
-- their payload rows too.
-- request_time decides membership; request_date (Databricks' clustering key) only lets the
-- engine skip files, with a day of slack either side so that a row whose two columns disagree
-- is never lost.
SELECT *
FROM payload_source
WHERE request_time >= ${inputs_start} AND request_time < ${window_end}
  AND request_date BETWEEN ${payload_date_from} AND ${payload_date_to}
