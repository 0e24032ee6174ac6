-- compare: materialized
-- GROUPING SETS, ROLLUP and CUBE with GROUPING and GROUPING_ID, over a join (updating
-- aggregations, whose changelogs interleave differently as the two sources do), with HAVING,
-- and beside window_start, window_end over a TUMBLE window TVF (append-only).
CREATE TABLE auction (
  id BIGINT, itemName STRING, description STRING, initialBid BIGINT, reserve BIGINT,
  `dateTime` TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, category BIGINT, extra STRING,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/auction.json', 'format' = 'json');

CREATE TABLE bid (
  auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
  `dateTime` TIMESTAMP(3), extra STRING,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/bid.json', 'format' = 'json');

CREATE TABLE by_channel_category (channel STRING, category BIGINT, n BIGINT, g BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'by_channel_category');
CREATE TABLE rollup_bidders (channel STRING, bidder BIGINT, n BIGINT, mx BIGINT, gid BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'rollup');
CREATE TABLE cube_sellers (category BIGINT, seller BIGINT, n BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'cube');
CREATE TABLE windowed (ws TIMESTAMP(3), channel STRING, n BIGINT, s BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'windowed');
EXECUTE STATEMENT SET BEGIN
INSERT INTO by_channel_category SELECT B.channel, A.category, COUNT(*), GROUPING(B.channel, A.category) FROM bid B JOIN auction A ON A.id = B.auction WHERE B.price > 2000000
GROUP BY GROUPING SETS ((B.channel, A.category), (B.channel), ());
INSERT INTO rollup_bidders SELECT channel, bidder, COUNT(*), MAX(price), GROUPING_ID(channel, bidder) FROM bid WHERE bidder < 1006 GROUP BY ROLLUP (channel, bidder) HAVING COUNT(*) > 1;
INSERT INTO cube_sellers SELECT category, seller, COUNT(*) FROM auction GROUP BY CUBE (category, seller);
INSERT INTO windowed SELECT window_start, channel, COUNT(*), SUM(price) FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end, GROUPING SETS ((channel), ());
END;
