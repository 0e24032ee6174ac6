-- A DECIMAL precision above 38.
CREATE TABLE payments (
  id BIGINT,
  amount DECIMAL(40, 2)
) WITH ('connector' = 'datagen');

CREATE TABLE out (id BIGINT) WITH ('connector' = 'print');

INSERT INTO out SELECT id FROM payments;
