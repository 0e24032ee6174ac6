-- Nexmark q2: selection of bids on some auctions -> blackhole.
CREATE TABLE bid (
  auction BIGINT,
  bidder BIGINT,
  price BIGINT,
  channel STRING,
  url STRING,
  dateTime TIMESTAMP(3),
  extra STRING,
  WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND
) WITH (
  'connector' = 'nexmark',
  'nexmark.table' = 'bid',
  'number-of-events' = '10000000'
);

CREATE TABLE sink (auction BIGINT, price BIGINT) WITH ('connector' = 'blackhole');

INSERT INTO sink SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0;
