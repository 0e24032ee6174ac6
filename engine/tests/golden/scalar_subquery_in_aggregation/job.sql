-- compare: materialized
-- Uncorrelated scalar subqueries in an aggregation, as Flink plans them: those of the SELECT
-- list and HAVING join the aggregation's output (without a key, in one subtask), and one in an
-- aggregate's argument joins its input; every result row is updated as the subquery's value
-- changes, also a window aggregation's. The final tables are compared.
CREATE TABLE auction (
  id BIGINT, itemName STRING, description STRING, initialBid BIGINT, reserve BIGINT,
  `dateTime` TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, category BIGINT, extra STRING,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/auction.json', 'format' = 'json');

CREATE TABLE category_share (category BIGINT, n BIGINT, per_mille BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'category_share');
CREATE TABLE big_sellers (seller BIGINT, n BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'big_sellers');
CREATE TABLE window_share (window_start TIMESTAMP(3), n BIGINT, per_mille BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'window_share');
CREATE TABLE over_min (category BIGINT, total BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'over_min');

EXECUTE STATEMENT SET BEGIN
INSERT INTO category_share SELECT category, COUNT(*), COUNT(*) * 1000 / (SELECT COUNT(*) FROM auction) FROM auction GROUP BY category;
INSERT INTO big_sellers SELECT seller, COUNT(*) FROM auction GROUP BY seller HAVING COUNT(*) > (SELECT COUNT(*) / 20 FROM auction);
INSERT INTO over_min SELECT category, SUM(reserve - (SELECT MIN(reserve) FROM auction)) FROM auction GROUP BY category;
INSERT INTO window_share SELECT window_start, COUNT(*), COUNT(*) * 1000 / (SELECT COUNT(*) FROM auction)
FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(`dateTime`), INTERVAL '30' SECOND)) GROUP BY window_start, window_end;
END;
