-- CASE, CAST, COALESCE, IN and LIKE; an implicit widening cast into the sink.
CREATE TABLE products (
  id INT,
  name STRING,
  category STRING,
  price DOUBLE,
  qty INT,
  amount DECIMAL(10, 2),
  note VARCHAR(20)
) WITH ('connector' = 'filesystem', 'path' = '/data/products.json', 'format' = 'json');

CREATE TABLE projected (
  id BIGINT,
  label STRING,
  qty_str STRING,
  amount_dbl DOUBLE,
  note_or_default STRING,
  tier STRING,
  small_qty BOOLEAN,
  code_like BOOLEAN
) WITH ('connector' = 'print');

INSERT INTO projected
SELECT
  id,
  CONCAT(name, '/', category) AS label,
  CAST(qty AS STRING) AS qty_str,
  CAST(amount AS DOUBLE) AS amount_dbl,
  COALESCE(note, 'n/a') AS note_or_default,
  CASE WHEN price >= 100 THEN 'premium' WHEN price >= 10 THEN 'standard' ELSE 'budget' END AS tier,
  qty IN (1, 2, 3) AS small_qty,
  name LIKE 'A%' AS code_like
FROM products
WHERE category <> 'hidden';
