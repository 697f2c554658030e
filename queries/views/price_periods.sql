-- price_periods: each price row with the instant its successor takes over.
-- A price applies from effective_from (inclusive) until the next effective_from of the same
-- entity (exclusive), or forever when it is the latest. (entity_name, effective_from) is unique:
-- the prices loader rejects duplicates.
SELECT
  entity_name,
  effective_from,
  LEAD(effective_from) OVER (PARTITION BY entity_name ORDER BY effective_from) AS effective_until,
  input_usd_per_token,
  output_usd_per_token,
  cache_read_usd_per_token,
  cache_write_usd_per_token,
  reasoning_usd_per_token
FROM prices
