-- compare: changelog
-- ORDER BY the time attribute that the SELECT list leaves out (a temporal sort on a hidden
-- column, as Calcite plans it): the rows by time, late ones dropped; printed in order.
CREATE TABLE bid (
  auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
  `dateTime` TIMESTAMP(3), extra STRING,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/bid.json', 'format' = 'json');

CREATE TABLE o (auction BIGINT, p BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'o');
INSERT INTO o SELECT auction, price * 2 AS p FROM bid WHERE price > 1000000 ORDER BY `dateTime`;
