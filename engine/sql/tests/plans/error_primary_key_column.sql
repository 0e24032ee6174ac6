-- A primary key names physical columns of its table.
CREATE TABLE t (id BIGINT, PRIMARY KEY (idd) NOT ENFORCED) WITH ('connector' = 'blackhole');
