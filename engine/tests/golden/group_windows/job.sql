-- compare: materialized
-- Flink's group window functions (GROUP BY TUMBLE/HOP/SESSION(ts, ...) with their _START,
-- _END and _ROWTIME functions), as Nexmark q11 writes them. 700 bids over five minutes, out
-- of order within the watermark's 4 s, and 1% of them later than that (dropped by every
-- window that has fired). Append-only sinks; the tables are compared.
CREATE TABLE bid (
  auction BIGINT,
  bidder BIGINT,
  price BIGINT,
  channel STRING,
  url STRING,
  `dateTime` TIMESTAMP(3),
  extra STRING,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/bid.json',
  'format' = 'json'
);

CREATE TABLE q11 (bidder BIGINT, bid_count BIGINT, starttime TIMESTAMP(3), endtime TIMESTAMP(3))
WITH ('connector' = 'print', 'print-identifier' = 'q11');

CREATE TABLE per_channel (channel STRING, s TIMESTAMP(3), e TIMESTAMP(3), n BIGINT, total BIGINT, top BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'per_channel');

CREATE TABLE hot (auction BIGINT, s TIMESTAMP(3), e TIMESTAMP(3), n BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'hot');

CREATE TABLE per_minute (s TIMESTAMP(3), bidders BIGINT, busiest BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'per_minute');

CREATE VIEW bidder_windows AS
SELECT bidder, TUMBLE_ROWTIME(`dateTime`, INTERVAL '20' SECOND) AS rt, COUNT(*) AS n
FROM bid
GROUP BY bidder, TUMBLE(`dateTime`, INTERVAL '20' SECOND);

EXECUTE STATEMENT SET BEGIN
INSERT INTO q11
SELECT
    B.bidder,
    count(*) as bid_count,
    SESSION_START(B.`dateTime`, INTERVAL '10' SECOND) as starttime,
    SESSION_END(B.`dateTime`, INTERVAL '10' SECOND) as endtime
FROM bid B
GROUP BY B.bidder, SESSION(B.`dateTime`, INTERVAL '10' SECOND);
INSERT INTO per_channel
SELECT channel, TUMBLE_START(`dateTime`, INTERVAL '30' SECOND), TUMBLE_END(`dateTime`, INTERVAL '30' SECOND),
       COUNT(*), SUM(price), MAX(price)
FROM bid
WHERE price > 1000
GROUP BY TUMBLE(`dateTime`, INTERVAL '30' SECOND), channel
HAVING COUNT(*) > 2;
INSERT INTO hot
SELECT auction, HOP_START(`dateTime`, INTERVAL '10' SECOND, INTERVAL '30' SECOND),
       HOP_END(`dateTime`, INTERVAL '10' SECOND, INTERVAL '30' SECOND), COUNT(*)
FROM bid
GROUP BY auction, HOP(`dateTime`, INTERVAL '10' SECOND, INTERVAL '30' SECOND)
HAVING COUNT(*) >= 2;
INSERT INTO per_minute
SELECT TUMBLE_START(rt, INTERVAL '1' MINUTE), COUNT(*), MAX(n)
FROM bidder_windows
GROUP BY TUMBLE(rt, INTERVAL '1' MINUTE);
END;
