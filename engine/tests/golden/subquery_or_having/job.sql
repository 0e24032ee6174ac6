-- compare: materialized
-- IN, NOT IN, EXISTS and NOT EXISTS subqueries in HAVING and under OR or NOT in a WHERE,
-- which Flink 2.3 accepts in streaming. A HAVING conjunct is a semi or anti join of the
-- aggregation's rows; under OR or NOT, Calcite's SubQueryRemoveRule makes a LEFT JOIN with
-- the subquery's distinct values and a marker (for IN also an inner join with its counts,
-- for NULLs), and the condition a CASE over them. NOT IN over a subquery with a NULL, two
-- subqueries in one condition, a correlation other than an equality rewritten through one.
-- Two or more sources feed each result, so the printed changelogs interleave differently;
-- the final tables are compared.
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

CREATE TABLE having_in (seller BIGINT, n BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'having_in');
CREATE TABLE having_not_in (seller BIGINT, n BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'having_not_in');
CREATE TABLE having_count_in (seller BIGINT, n BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'having_count_in');
CREATE TABLE having_exists (seller BIGINT, n BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'having_exists');
CREATE TABLE having_or_in (seller BIGINT, n BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'having_or_in');
CREATE TABLE or_in (id BIGINT, seller BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'or_in');
CREATE TABLE or_not_in (id BIGINT, seller BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'or_not_in');
CREATE TABLE or_not_in_null (id BIGINT, seller BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'or_not_in_null');
CREATE TABLE or_exists (id BIGINT, name STRING) WITH ('connector' = 'print', 'print-identifier' = 'or_exists');
CREATE TABLE or_not_exists (id BIGINT, name STRING) WITH ('connector' = 'print', 'print-identifier' = 'or_not_exists');
CREATE TABLE not_and_exists (id BIGINT, name STRING) WITH ('connector' = 'print', 'print-identifier' = 'not_and_exists');
CREATE TABLE not_in_or (id BIGINT, name STRING) WITH ('connector' = 'print', 'print-identifier' = 'not_in_or');
CREATE TABLE or_exists_uncorrelated (id BIGINT, name STRING) WITH ('connector' = 'print', 'print-identifier' = 'or_exists_uncorrelated');
CREATE TABLE or_exists_rewritten (id BIGINT, name STRING) WITH ('connector' = 'print', 'print-identifier' = 'or_exists_rewritten');
CREATE TABLE or_two_in (id BIGINT, name STRING) WITH ('connector' = 'print', 'print-identifier' = 'or_two_in');

EXECUTE STATEMENT SET BEGIN
INSERT INTO having_in SELECT seller, COUNT(*) FROM auction GROUP BY seller
HAVING seller IN (SELECT id FROM person WHERE state = 'OR');
INSERT INTO having_not_in SELECT seller, COUNT(*) FROM auction GROUP BY seller
HAVING seller NOT IN (SELECT id FROM person WHERE state = 'OR') AND COUNT(*) > 1;
INSERT INTO having_count_in SELECT seller, COUNT(*) FROM auction GROUP BY seller
HAVING COUNT(*) IN (SELECT category - 8 FROM auction WHERE category > 10);
INSERT INTO having_exists SELECT seller, COUNT(*) FROM auction GROUP BY seller
HAVING EXISTS (SELECT 1 FROM bid WHERE price > 2900000);
INSERT INTO having_or_in SELECT seller, COUNT(*) FROM auction GROUP BY seller
HAVING COUNT(*) > 3 OR seller IN (SELECT id FROM person WHERE state = 'OR');
INSERT INTO or_in SELECT id, seller FROM auction
WHERE category = 10 OR seller IN (SELECT id FROM person WHERE state = 'OR');
INSERT INTO or_not_in SELECT id, seller FROM auction
WHERE category = 10 OR seller NOT IN (SELECT id FROM person WHERE state = 'OR');
INSERT INTO or_not_in_null SELECT id, seller FROM auction
WHERE category = 10 OR seller NOT IN (SELECT NULLIF(id, 1017) FROM person WHERE state = 'OR');
INSERT INTO or_exists SELECT id, name FROM person P
WHERE state = 'OR' OR EXISTS (SELECT * FROM auction A WHERE A.seller = P.id AND A.category = 10);
INSERT INTO or_not_exists SELECT id, name FROM person P
WHERE state = 'OR' OR NOT EXISTS (SELECT * FROM auction A WHERE A.seller = P.id);
INSERT INTO not_and_exists SELECT id, name FROM person P
WHERE NOT (state = 'ID' AND EXISTS (SELECT * FROM auction A WHERE A.seller = P.id));
INSERT INTO not_in_or SELECT id, name FROM person P
WHERE NOT (id IN (SELECT seller FROM auction WHERE category = 11) OR state = 'WA');
INSERT INTO or_exists_uncorrelated SELECT id, name FROM person P
WHERE state = 'OR' OR EXISTS (SELECT * FROM bid B WHERE B.price > 2900000);
INSERT INTO or_exists_rewritten SELECT id, name FROM person P
WHERE state = 'OR' OR EXISTS (SELECT * FROM bid B WHERE B.bidder = P.id AND B.price > P.id * 2500);
INSERT INTO or_two_in SELECT id, name FROM person P
WHERE state = 'OR' OR id IN (SELECT seller FROM auction WHERE category = 10) OR id IN (SELECT bidder FROM bid WHERE price > 2900000);
END;
