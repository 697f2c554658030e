-- latest_served_entities: one row per served_entity_id with the names of its latest change.
-- served_entities is slowly changing (one row per configuration change); the row with the
-- greatest change_time wins. Ties on change_time go to the greatest endpoint_name, then
-- entity_name, so the result never depends on file order. NULL change_time ranks last.
SELECT served_entity_id, endpoint_name, entity_name
FROM (
  SELECT
    served_entity_id,
    endpoint_name,
    entity_name,
    ROW_NUMBER() OVER (
      PARTITION BY served_entity_id
      ORDER BY change_time DESC NULLS LAST, endpoint_name DESC NULLS LAST, entity_name DESC NULLS LAST
    ) AS change_rank
  FROM served_entities
  WHERE served_entity_id IS NOT NULL
) ranked
WHERE change_rank = 1
