-- Scalar subqueries in an aggregation: those of the SELECT list and HAVING join its output
-- (LEFT, without a key), also a window aggregation's (whose result is then updating), one in an
-- aggregate's argument joins its input.
CREATE TABLE auction (id BIGINT, seller BIGINT, reserve BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');
CREATE TABLE o1 (seller BIGINT, share BIGINT) WITH ('connector' = 'print');
CREATE TABLE o2 (seller BIGINT, above BIGINT) WITH ('connector' = 'print');
CREATE TABLE o3 (window_start TIMESTAMP(3), share BIGINT) WITH ('connector' = 'print');
INSERT INTO o1 SELECT seller, COUNT(*) * 100 / (SELECT COUNT(*) FROM auction) FROM auction GROUP BY seller
  HAVING COUNT(*) > (SELECT COUNT(*) / 10 FROM auction);
INSERT INTO o2 SELECT seller, SUM(reserve - (SELECT MIN(reserve) FROM auction)) FROM auction GROUP BY seller;
INSERT INTO o3 SELECT window_start, COUNT(*) * 100 / (SELECT COUNT(*) FROM auction)
FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) GROUP BY window_start, window_end;
