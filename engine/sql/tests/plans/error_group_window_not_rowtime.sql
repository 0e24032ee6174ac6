-- A group window needs the event-time attribute.
CREATE TABLE bid (
  auction BIGINT,
  bidder BIGINT,
  price BIGINT,
  ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '4' SECOND
) WITH ('connector' = 'datagen', 'number-of-rows' = '100');
CREATE TABLE o (a BIGINT, b TIMESTAMP(3)) WITH ('connector' = 'print');
INSERT INTO o SELECT COUNT(*), TUMBLE_END(auction_ts, INTERVAL '1' MINUTE) FROM (SELECT ts AS auction_ts, auction + 0 AS a FROM bid GROUP BY ts, auction) GROUP BY TUMBLE(auction_ts, INTERVAL '1' MINUTE);
