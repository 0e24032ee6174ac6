-- compare: materialized
-- ORDER BY and LIMIT in streaming queries: a temporal sort (ORDER BY the event-time
-- attribute, then a second key; rows out of order, ties on the time, a late row dropped),
-- a global Top-N by ORDER BY ... LIMIT (updating), the same with OFFSET, and LIMIT alone
-- (the first rows, append-only). Flink prints the sorted rows only when the watermark
-- releases them, and the Top-N's retractions depend on arrival order across subtasks at
-- p=3, so final tables are compared; at p=1 the sorted sink's order is the changelog's.
CREATE TABLE bids (
  id BIGINT,
  price BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/bids.json',
  'format' = 'json'
);

CREATE TABLE sorted (id BIGINT, price BIGINT, ts TIMESTAMP(3))
WITH ('connector' = 'print', 'print-identifier' = 'sorted');

CREATE TABLE top3 (id BIGINT, price BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'top3');

CREATE TABLE next2 (id BIGINT, price BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'next2');

CREATE TABLE first4 (id BIGINT, price BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'first4');

EXECUTE STATEMENT SET BEGIN
INSERT INTO sorted SELECT id, price, ts FROM bids ORDER BY ts, price DESC;
INSERT INTO top3 SELECT id, price FROM bids ORDER BY price DESC LIMIT 3;
INSERT INTO next2 SELECT id, price FROM bids ORDER BY price DESC, id OFFSET 1 ROWS FETCH NEXT 2 ROWS ONLY;
INSERT INTO first4 SELECT id, price FROM bids LIMIT 4;
END;
