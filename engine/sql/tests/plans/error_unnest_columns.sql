-- A MAP unnests into two columns (key, value); one name is given.
CREATE TABLE orders (id BIGINT, attrs MAP<STRING, INT>) WITH ('connector' = 'filesystem', 'path' = '/tmp/o.json', 'format' = 'json');
CREATE TABLE out (id BIGINT, k STRING) WITH ('connector' = 'print');

INSERT INTO out SELECT id, k FROM orders CROSS JOIN UNNEST(attrs) AS t(k);
