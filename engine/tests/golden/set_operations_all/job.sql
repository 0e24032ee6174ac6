-- compare: materialized
-- INTERSECT ALL and EXCEPT ALL, as Flink's RewriteIntersectAllRule and RewriteMinusAllRule
-- plan them: a UNION ALL of both inputs, each row tagged with its side, counted per
-- distinct row (GROUP BY every column), then each row repeated min(left, right) times
-- (INTERSECT ALL) or left - right times (EXCEPT ALL) by ReplicateRows. Duplicates on both
-- sides, NULLs in a column (equal to each other), an updating input (a GROUP BY) and a
-- nested INTERSECT ALL under an EXCEPT ALL. The results are updating: a row's copies are
-- retracted and emitted again as its counts change. Two or three sources feed each
-- result, so the printed changelogs interleave differently; the final tables are compared.
CREATE TABLE person (
  id BIGINT, name STRING, emailAddress STRING, creditCard STRING, city STRING, state STRING,
  `dateTime` TIMESTAMP(3), extra STRING,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/person.json', 'format' = 'json');

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

CREATE TABLE intersect_all (b BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'intersect_all');
CREATE TABLE except_all (b BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'except_all');
CREATE TABLE except_all_bids (b BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'except_all_bids');
CREATE TABLE intersect_all_nulls (b BIGINT, e STRING) WITH ('connector' = 'print', 'print-identifier' = 'intersect_all_nulls');
CREATE TABLE except_all_nulls (b BIGINT, e STRING) WITH ('connector' = 'print', 'print-identifier' = 'except_all_nulls');
CREATE TABLE except_all_updating (c BIGINT, n BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'except_all_updating');
CREATE TABLE nested_all (b BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'nested_all');
EXECUTE STATEMENT SET BEGIN
INSERT INTO intersect_all SELECT seller FROM auction INTERSECT ALL SELECT bidder FROM bid WHERE price > 2000000;
INSERT INTO except_all SELECT seller FROM auction EXCEPT ALL SELECT bidder FROM bid WHERE price > 2000000;
INSERT INTO except_all_bids SELECT bidder FROM bid WHERE price > 2700000 EXCEPT ALL SELECT seller FROM auction;
INSERT INTO intersect_all_nulls SELECT seller, NULLIF(extra, 'ax') FROM auction INTERSECT ALL SELECT bidder, NULLIF(extra, 'bx') FROM bid;
INSERT INTO except_all_nulls SELECT seller, NULLIF(extra, 'ax') FROM auction EXCEPT ALL SELECT bidder, NULLIF(extra, 'bx') FROM bid WHERE price > 1000000;
INSERT INTO except_all_updating SELECT category, COUNT(*) FROM auction GROUP BY category
EXCEPT ALL SELECT category, COUNT(*) FROM auction WHERE seller > 1012 GROUP BY category;
INSERT INTO nested_all SELECT id FROM person EXCEPT ALL (SELECT seller FROM auction INTERSECT ALL SELECT bidder FROM bid);
END;
