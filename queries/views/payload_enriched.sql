-- payload_enriched: one row per payload (inference table) row of the window, with names and
-- its weight as a latency sample.
-- * endpoint_name, entity_name: as in usage_enriched.
-- * latency_weight: 1/sampling_fraction in millionths, rounded to a whole number and held as
--   DECIMAL(20,0), so that sums of weights are exact whatever the order of summation and cannot
--   overflow. NULL when the row is not a usable latency sample: status outside 200-299,
--   execution_duration_ms NULL or negative, or sampling_fraction NULL or outside [1e-9, 1].
SELECT
  p.request_time,
  date_trunc('hour', p.request_time) AS hour,
  COALESCE(e.endpoint_name, '(unknown)') AS endpoint_name,
  COALESCE(e.entity_name, '(unknown)') AS entity_name,
  p.status_code,
  p.execution_duration_ms AS duration_ms,
  CASE
    WHEN p.status_code BETWEEN 200 AND 299
      AND p.execution_duration_ms >= 0
      AND p.sampling_fraction >= 0.000000001
      AND p.sampling_fraction <= 1
    THEN CAST(ROUND(1000000 / p.sampling_fraction) AS DECIMAL(20, 0))
  END AS latency_weight
FROM payload p
LEFT JOIN latest_served_entities e
  ON p.served_entity_id = e.served_entity_id
