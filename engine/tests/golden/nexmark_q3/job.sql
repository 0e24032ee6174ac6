-- compare: materialized
-- Nexmark q3 (local item suggestion): a regular inner join of auctions and persons on the
-- seller, filtered on the auction's category and the person's state (an OR of equalities),
-- and a LEFT JOIN variant: every person with the ids of their auctions in category 10 or 11,
-- null-padded (then retracted when an auction arrives). Either side may arrive first, so the
-- final tables are compared. The official query, with `dateTime` quoted.
CREATE TABLE auction (
  id BIGINT,
  itemName STRING,
  description STRING,
  initialBid BIGINT,
  reserve BIGINT,
  `dateTime` TIMESTAMP(3),
  expires TIMESTAMP(3),
  seller BIGINT,
  category BIGINT,
  extra STRING,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/auction.json',
  'format' = 'json'
);

CREATE TABLE person (
  id BIGINT,
  name STRING,
  emailAddress STRING,
  creditCard STRING,
  city STRING,
  state STRING,
  `dateTime` TIMESTAMP(3),
  extra STRING,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/person.json',
  'format' = 'json'
);

CREATE TABLE q3 (name STRING, city STRING, state STRING, id BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'q3');

CREATE TABLE sellers (name STRING, state STRING, auction_id BIGINT, category BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'sellers');

CREATE TABLE per_state (state STRING, sellers BIGINT, auctions BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'per_state');

EXECUTE STATEMENT SET BEGIN
INSERT INTO q3
SELECT P.name, P.city, P.state, A.id
FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
WHERE A.category = 10 AND (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA');
INSERT INTO sellers
SELECT P.name, P.state, A.id, A.category
FROM person AS P LEFT JOIN (SELECT * FROM auction WHERE category IN (10, 11)) AS A ON A.seller = P.id;
INSERT INTO per_state
SELECT P.state, COUNT(DISTINCT P.id), COUNT(A.id)
FROM person AS P LEFT JOIN auction AS A ON A.seller = P.id
GROUP BY P.state;
END;
