-- Flink's group window functions: GROUP BY TUMBLE(ts, size), HOP(ts, slide, size)
-- and SESSION(ts, gap) beside the keys, with their _START, _END and _ROWTIME
-- functions in the SELECT list and HAVING; each is the window aggregation of
-- the equivalent window TVF (a SESSION's keys are its PARTITION BY), and
-- TUMBLE_ROWTIME keeps the event-time attribute for the cascaded window.
CREATE TABLE bid (
  auction BIGINT,
  bidder BIGINT,
  price BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '4' SECOND
) WITH ('connector' = 'datagen', 'number-of-rows' = '100');

CREATE TABLE sessions (bidder BIGINT, n BIGINT, s TIMESTAMP(3), e TIMESTAMP(3)) WITH ('connector' = 'print');
CREATE TABLE hops (auction BIGINT, e TIMESTAMP(3), mx BIGINT) WITH ('connector' = 'print');
CREATE TABLE cascaded (s TIMESTAMP(3), total BIGINT) WITH ('connector' = 'print');

CREATE VIEW per_minute AS
SELECT auction, TUMBLE_START(ts, INTERVAL '1' MINUTE) AS s, TUMBLE_ROWTIME(ts, INTERVAL '1' MINUTE) AS rt, COUNT(*) AS n
FROM bid WHERE price > 10
GROUP BY TUMBLE(ts, INTERVAL '1' MINUTE), auction;

INSERT INTO sessions
SELECT B.bidder, count(*), SESSION_START(B.ts, INTERVAL '10' SECOND), SESSION_END(B.ts, INTERVAL '10' SECOND)
FROM bid B GROUP BY B.bidder, SESSION(B.ts, INTERVAL '10' SECOND);

INSERT INTO hops
SELECT auction, HOP_END(ts, INTERVAL '5' SECOND, INTERVAL '15' SECOND), MAX(price)
FROM bid GROUP BY HOP(ts, INTERVAL '5' SECOND, INTERVAL '15' SECOND), auction
HAVING HOP_START(ts, INTERVAL '5' SECOND, INTERVAL '15' SECOND) > TIMESTAMP '2024-01-01 00:00:00';

INSERT INTO cascaded
SELECT TUMBLE_START(rt, INTERVAL '1' HOUR), SUM(n) FROM per_minute GROUP BY TUMBLE(rt, INTERVAL '1' HOUR);
