-- compare: materialized
-- UNION, INTERSECT and EXCEPT without ALL (distinct rows; INTERSECT and EXCEPT as semi and anti
-- joins on every column with NULLs equal, as Flink plans them), with NULLs in a column, and a
-- nested EXCEPT of a UNION. Updating results from two or three sources; the final tables
-- are compared.
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

CREATE TABLE union_distinct (b BIGINT, e STRING) WITH ('connector' = 'print', 'print-identifier' = 'union_distinct');
CREATE TABLE intersect_rows (b BIGINT, e STRING) WITH ('connector' = 'print', 'print-identifier' = 'intersect');
CREATE TABLE except_rows (b BIGINT, e STRING) WITH ('connector' = 'print', 'print-identifier' = 'except');
CREATE TABLE never_active (id BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'never_active');
EXECUTE STATEMENT SET BEGIN
INSERT INTO union_distinct SELECT bidder, NULLIF(extra, '') FROM bid WHERE price > 2000000 UNION SELECT seller, NULLIF(extra, '') FROM auction;
INSERT INTO intersect_rows SELECT bidder, NULLIF(extra, 'bx') FROM bid INTERSECT SELECT seller, NULLIF(extra, 'ax') FROM auction;
INSERT INTO except_rows SELECT seller, NULLIF(extra, 'ax') FROM auction EXCEPT SELECT bidder, NULLIF(extra, 'bx') FROM bid WHERE price > 1000000;
INSERT INTO never_active SELECT id FROM person EXCEPT (SELECT seller FROM auction UNION SELECT bidder FROM bid WHERE price > 2900000);
END;
