-- Flink supports only NOT ENFORCED primary keys.
CREATE TABLE t (id BIGINT, PRIMARY KEY (id)) WITH ('connector' = 'blackhole');
