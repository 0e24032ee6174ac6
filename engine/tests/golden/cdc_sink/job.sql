-- The changelog formats written by filesystem sinks, as Flink writes them: an updating
-- GROUP BY in debezium-json, canal-json and maxwell-json (an update is a delete of the old
-- row and an insert of the new one), a debezium-json source passed through to sinks with the
-- formats' encoding options (ISO-8601 timestamps, decimals as plain numbers, null fields left
-- out), and the json format's plain decimals beside them.
CREATE TABLE orders (id BIGINT, customer STRING, amount DECIMAL(10, 2), note STRING)
WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/orders.json', 'format' = 'json');
CREATE TABLE products (id BIGINT, name STRING, price DECIMAL(10, 2), category STRING, updated TIMESTAMP(3))
WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/products.json', 'format' = 'debezium-json');

CREATE TABLE totals_debezium (customer STRING, n BIGINT, total DECIMAL(38, 2), notes BIGINT)
WITH ('connector' = 'filesystem', 'path' = '${OUTPUT_DIR}/totals_debezium', 'format' = 'debezium-json');
CREATE TABLE totals_canal (customer STRING, n BIGINT, total DECIMAL(38, 2), notes BIGINT)
WITH ('connector' = 'filesystem', 'path' = '${OUTPUT_DIR}/totals_canal', 'format' = 'canal-json');
CREATE TABLE totals_maxwell (customer STRING, n BIGINT, total DECIMAL(38, 2), notes BIGINT)
WITH ('connector' = 'filesystem', 'path' = '${OUTPUT_DIR}/totals_maxwell', 'format' = 'maxwell-json');
CREATE TABLE products_debezium (id BIGINT, name STRING, price DECIMAL(10, 2), category STRING, updated TIMESTAMP(3))
WITH ('connector' = 'filesystem', 'path' = '${OUTPUT_DIR}/products_debezium', 'format' = 'debezium-json',
      'debezium-json.timestamp-format.standard' = 'ISO-8601', 'debezium-json.encode.decimal-as-plain-number' = 'true',
      'debezium-json.encode.ignore-null-fields' = 'true', 'debezium-json.map-null-key.mode' = 'LITERAL');
CREATE TABLE products_canal (id BIGINT, name STRING, price DECIMAL(10, 2), category STRING, updated TIMESTAMP(3))
WITH ('connector' = 'filesystem', 'path' = '${OUTPUT_DIR}/products_canal', 'format' = 'canal-json',
      'canal-json.encode.decimal-as-plain-number' = 'true');
CREATE TABLE products_maxwell (id BIGINT, name STRING, price DECIMAL(10, 2), category STRING, updated TIMESTAMP(3))
WITH ('connector' = 'filesystem', 'path' = '${OUTPUT_DIR}/products_maxwell', 'format' = 'maxwell-json',
      'maxwell-json.timestamp-format.standard' = 'ISO-8601', 'maxwell-json.encode.ignore-null-fields' = 'true');
CREATE TABLE orders_plain (id BIGINT, amount DECIMAL(10, 2), big DECIMAL(20, 6))
WITH ('connector' = 'filesystem', 'path' = '${OUTPUT_DIR}/orders_plain', 'format' = 'json',
      'json.encode.decimal-as-plain-number' = 'true');

EXECUTE STATEMENT SET BEGIN
INSERT INTO totals_debezium SELECT customer, COUNT(*), SUM(amount), COUNT(note) FROM orders GROUP BY customer;
INSERT INTO totals_canal SELECT customer, COUNT(*), SUM(amount), COUNT(note) FROM orders GROUP BY customer;
INSERT INTO totals_maxwell SELECT customer, COUNT(*), SUM(amount), COUNT(note) FROM orders GROUP BY customer;
INSERT INTO products_debezium SELECT * FROM products;
INSERT INTO products_canal SELECT * FROM products;
INSERT INTO products_maxwell SELECT * FROM products;
INSERT INTO orders_plain SELECT id, amount, CAST(amount * 1000000 AS DECIMAL(20, 6)) FROM orders;
END;
