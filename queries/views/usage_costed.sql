-- usage_costed: usage_enriched with token categories and exact cost; the usage view every
-- output reads (materialised once per run, see src/scratch.rs).
-- The usage table is the authority for token counts. Where the payload table logged the same
-- request (databricks_request_id) with a usage block, its cache-read, cache-write and reasoning
-- counts split the usage-table totals into categories (each capped so the parts never exceed
-- the totals); requests without such a payload row are billed entirely at the input and output
-- prices. A token is billed once, in one category:
--   cost_usd = (input - cache_read - cache_write) * input price + cache_read * cache-read price
--            + cache_write * cache-write price + (output - reasoning) * output price
--            + reasoning * reasoning price,
-- a missing category price falling back to the input (or output) price. Exact DECIMAL(28,12)
-- (prices are DECIMAL(18,12) per token); NULL when not priced. The casts keep every
-- intermediate type within 38 digits, so Spark SQL (which otherwise drops decimal places when
-- a result type would exceed 38 digits) computes the same exact numbers as DataFusion.
-- The payload row is matched in usage_enriched, on the request id and the UTC date, which lets a
-- query's date filter prune the payload scan too.
WITH split AS (
  SELECT
    u.*,
    LEAST(GREATEST(COALESCE(u.cache_read_reported, 0), 0), GREATEST(u.input_tokens, 0)) AS cache_read_tokens,
    LEAST(GREATEST(COALESCE(u.reasoning_reported, 0), 0), GREATEST(u.output_tokens, 0)) AS reasoning_tokens
  FROM usage_enriched u
),
capped AS (
  SELECT
    s.*,
    LEAST(GREATEST(COALESCE(cache_write_reported, 0), 0), GREATEST(input_tokens, 0) - cache_read_tokens) AS cache_write_tokens
  FROM split s
)
SELECT
  request_time,
  databricks_request_id,
  usage_date,
  hour,
  endpoint_name,
  entity_name,
  requester,
  team,
  known_entity,
  null_requester,
  status_code,
  row_weight,
  estimated,
  input_tokens,
  output_tokens,
  negative_tokens,
  categories_known,
  CAST(cache_read_tokens AS BIGINT) AS cache_read_tokens,
  CAST(cache_write_tokens AS BIGINT) AS cache_write_tokens,
  CAST(reasoning_tokens AS BIGINT) AS reasoning_tokens,
  priced,
  CAST(
    CAST(CAST(input_tokens - cache_read_tokens - cache_write_tokens AS DECIMAL(18, 0)) * input_usd_per_token AS DECIMAL(30, 12))
    + CAST(CAST(cache_read_tokens AS DECIMAL(18, 0)) * COALESCE(cache_read_usd_per_token, input_usd_per_token) AS DECIMAL(30, 12))
    + CAST(CAST(cache_write_tokens AS DECIMAL(18, 0)) * COALESCE(cache_write_usd_per_token, input_usd_per_token) AS DECIMAL(30, 12))
    + CAST(CAST(output_tokens - reasoning_tokens AS DECIMAL(18, 0)) * output_usd_per_token AS DECIMAL(30, 12))
    + CAST(CAST(reasoning_tokens AS DECIMAL(18, 0)) * COALESCE(reasoning_usd_per_token, output_usd_per_token) AS DECIMAL(30, 12))
    AS DECIMAL(28, 12)) AS cost_usd
FROM capped
