-- Scalar functions, CASE/CAST/COALESCE/IN/LIKE, three-valued logic on nulls.
CREATE TABLE products (
  id BIGINT,
  name STRING,
  category STRING,
  price DOUBLE,
  qty INT,
  amount DECIMAL(10, 2),
  active BOOLEAN,
  note VARCHAR(20),
  code STRING
) WITH (
  'connector' = 'filesystem',
  'path' = '${INPUT_DIR}/products.json',
  'format' = 'json'
);

CREATE TABLE projected (
  id BIGINT,
  name_upper STRING,
  cat_lower STRING,
  label STRING,
  name_sub STRING,
  note_trim STRING,
  name_len INT,
  total DOUBLE,
  qty_plus INT,
  qty_half INT,
  price_quarter DOUBLE,
  amount_double DECIMAL(13, 2),
  amount_plus DECIMAL(12, 2),
  price_int INT,
  qty_str STRING,
  amount_dbl DOUBLE,
  amount_str STRING,
  note_or_default STRING,
  tier STRING,
  small_qty BOOLEAN,
  starts_a BOOLEAN,
  code_like BOOLEAN,
  active BOOLEAN,
  inactive BOOLEAN,
  hot BOOLEAN,
  qty_or_price DOUBLE
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/projected',
  'format' = 'json'
);

CREATE TABLE filtered (
  id BIGINT,
  name STRING,
  qty INT,
  amount DECIMAL(10, 2),
  price DOUBLE
) WITH (
  'connector' = 'filesystem',
  'path' = '${OUTPUT_DIR}/filtered',
  'format' = 'json'
);

INSERT INTO projected
SELECT
  id,
  UPPER(name) AS name_upper,
  LOWER(category) AS cat_lower,
  CONCAT(name, '/', category) AS label,
  SUBSTRING(name, 2, 3) AS name_sub,
  TRIM(note) AS note_trim,
  CHAR_LENGTH(name) AS name_len,
  price * qty AS total,
  qty + 1 AS qty_plus,
  qty / 2 AS qty_half,
  price / 4 AS price_quarter,
  amount * 2 AS amount_double,
  amount + 1.5 AS amount_plus,
  CAST(price AS INT) AS price_int,
  CAST(qty AS STRING) AS qty_str,
  CAST(amount AS DOUBLE) AS amount_dbl,
  CAST(amount AS STRING) AS amount_str,
  COALESCE(note, 'n/a') AS note_or_default,
  CASE
    WHEN price >= 100 THEN 'expensive'
    WHEN price >= 10 THEN 'mid'
    WHEN price < 0 THEN 'refund'
    ELSE 'cheap'
  END AS tier,
  qty IN (1, 2, 3) AS small_qty,
  name LIKE 'a%' AS starts_a,
  code LIKE 'A_1%' AS code_like,
  active,
  NOT active AS inactive,
  price > 50 AND active AS hot,
  COALESCE(CAST(qty AS DOUBLE), price, -1.0) AS qty_or_price
FROM products
WHERE category IN ('Tools', 'Garden', 'Toys') OR name LIKE '%x%' OR category IS NULL;

INSERT INTO filtered
SELECT id, name, qty, amount, price
FROM products
WHERE qty IS NOT NULL AND qty > 2 AND (price < 50 OR amount >= 100) AND NOT (name LIKE '%o%');
