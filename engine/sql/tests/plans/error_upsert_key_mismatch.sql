-- The sink's PRIMARY KEY must be the key the query's updates are keyed by.
CREATE TABLE orders (customer STRING, region STRING, total DECIMAL(10, 2))
WITH ('connector' = 'filesystem', 'path' = '/data/orders.json', 'format' = 'json');

CREATE TABLE out (region STRING, customer STRING, total DECIMAL(38, 2), PRIMARY KEY (region) NOT ENFORCED)
WITH ('connector' = 'upsert-kafka', 'topic' = 'totals', 'properties.bootstrap.servers' = 'localhost:9092',
      'key.format' = 'json', 'value.format' = 'json');

INSERT INTO out SELECT region, customer, SUM(total) FROM orders GROUP BY region, customer;
