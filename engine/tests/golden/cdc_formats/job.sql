-- compare: materialized
-- Changelog formats read by the filesystem source: debezium-json (with and without the schema
-- wrapper), canal-json (rows batched in `data`, `old` holding the changed fields, DDL records
-- and another table's records filtered out) and maxwell-json. Their tables are updating: the
-- rows are printed with their kinds, aggregated, joined, ranked. Several sources feed the joins,
-- so the final tables are compared.
CREATE TABLE products (id BIGINT, name STRING, price DECIMAL(10, 2), category STRING, PRIMARY KEY (id) NOT ENFORCED)
WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/products.json', 'format' = 'debezium-json');
CREATE TABLE products_wrapped (id BIGINT, name STRING, price DECIMAL(10, 2), category STRING)
WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/products_schema.json', 'format' = 'debezium-json',
      'debezium-json.schema-include' = 'true');
CREATE TABLE orders (oid BIGINT, pid BIGINT, qty INT, status STRING)
WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/orders.json', 'format' = 'canal-json',
      'canal-json.table.include' = 'orders');
CREATE TABLE users (uid BIGINT, name STRING, level INT)
WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/users.json', 'format' = 'maxwell-json');

CREATE TABLE products_now (id BIGINT, name STRING, price DECIMAL(10, 2), category STRING)
WITH ('connector' = 'print', 'print-identifier' = 'products_now');
CREATE TABLE wrapped_now (id BIGINT, name STRING, price DECIMAL(10, 2), category STRING)
WITH ('connector' = 'print', 'print-identifier' = 'wrapped_now');
CREATE TABLE by_category (category STRING, n BIGINT, total DECIMAL(38, 2), top DECIMAL(10, 2))
WITH ('connector' = 'print', 'print-identifier' = 'by_category');
CREATE TABLE order_values (oid BIGINT, status STRING, qty INT, name STRING, amount DECIMAL(38, 2))
WITH ('connector' = 'print', 'print-identifier' = 'order_values');
CREATE TABLE top_orders (status STRING, oid BIGINT, qty INT, rn BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'top_orders');
CREATE TABLE levels (level INT, users BIGINT)
WITH ('connector' = 'print', 'print-identifier' = 'levels');

EXECUTE STATEMENT SET BEGIN
INSERT INTO products_now SELECT * FROM products;
INSERT INTO wrapped_now SELECT * FROM products_wrapped WHERE price > 10;
INSERT INTO by_category SELECT category, COUNT(*), SUM(price), MAX(price) FROM products GROUP BY category;
INSERT INTO order_values SELECT o.oid, o.status, o.qty, p.name, o.qty * p.price FROM orders o JOIN products p ON o.pid = p.id;
INSERT INTO top_orders SELECT status, oid, qty, rn FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY status ORDER BY qty DESC, oid) AS rn FROM orders) WHERE rn <= 2;
INSERT INTO levels SELECT level, COUNT(*) FROM users GROUP BY level;
END;
