-- cache_savings: what prompt caching saved, per (usage_date, endpoint_name, entity_name, team)
-- with cache-read or cache-write tokens in the window, priced rows only. Column definitions:
-- docs/OUTPUTS.md#cache_savings. Each request's price is the one usage_costed billed it with
-- (price_periods at request_time); exact DECIMAL arithmetic with every intermediate type within
-- 38 digits (as usage_costed), weighted by row_weight like daily_spend:
--   uncached    = cache_read * input price           (the cache reads at the uncached price)
--   cache reads = cache_read * cache-read price      (input price when the list has none)
--   premium     = cache_write * (cache-write price - input price)
--   net savings = uncached - cache reads - premium
WITH priced AS (
  SELECT
    u.usage_date,
    u.endpoint_name,
    u.entity_name,
    u.team,
    u.row_weight,
    u.cache_read_tokens,
    u.cache_write_tokens,
    CAST(CAST(u.cache_read_tokens AS DECIMAL(18, 0)) * p.input_usd_per_token AS DECIMAL(30, 12)) AS uncached,
    CAST(CAST(u.cache_read_tokens AS DECIMAL(18, 0)) * COALESCE(p.cache_read_usd_per_token, p.input_usd_per_token)
      AS DECIMAL(30, 12)) AS cache_reads,
    CAST(CAST(u.cache_write_tokens AS DECIMAL(18, 0))
      * (COALESCE(p.cache_write_usd_per_token, p.input_usd_per_token) - p.input_usd_per_token) AS DECIMAL(30, 12))
      AS premium
  FROM usage_costed u
  JOIN price_periods p
    ON p.entity_name = u.entity_name
    AND p.effective_from <= u.request_time
    AND (p.effective_until IS NULL OR u.request_time < p.effective_until)
  WHERE u.request_time >= ${window_start} AND u.request_time < ${window_end}
    AND u.usage_date BETWEEN ${window_from} AND ${window_to}
    AND (u.cache_read_tokens > 0 OR u.cache_write_tokens > 0)
),
summed AS (
  SELECT
    usage_date,
    endpoint_name,
    entity_name,
    team,
    CAST(SUM(row_weight) AS BIGINT) AS requests,
    CAST(SUM(cache_read_tokens * row_weight) AS BIGINT) AS cache_read_tokens,
    CAST(SUM(cache_write_tokens * row_weight) AS BIGINT) AS cache_write_tokens,
    CAST(SUM(uncached * CAST(row_weight AS DECIMAL(10, 0))) AS DECIMAL(38, 12)) AS uncached_cost_usd,
    CAST(SUM(cache_reads * CAST(row_weight AS DECIMAL(10, 0))) AS DECIMAL(38, 12)) AS cache_read_cost_usd,
    CAST(SUM(premium * CAST(row_weight AS DECIMAL(10, 0))) AS DECIMAL(38, 12)) AS cache_write_premium_usd
  FROM priced
  GROUP BY usage_date, endpoint_name, entity_name, team
)
SELECT
  usage_date,
  CAST(date_trunc('month', CAST(usage_date AS TIMESTAMP)) AS DATE) AS month,
  endpoint_name,
  entity_name,
  team,
  requests,
  cache_read_tokens,
  cache_write_tokens,
  uncached_cost_usd,
  cache_read_cost_usd,
  cache_write_premium_usd,
  CAST(uncached_cost_usd - cache_read_cost_usd - cache_write_premium_usd AS DECIMAL(38, 12)) AS net_savings_usd,
  ${price_version} AS price_version
FROM summed
ORDER BY usage_date, endpoint_name, entity_name, team
