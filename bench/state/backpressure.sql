-- Checkpoints under full backpressure (scripts/bench_backpressure.py): sources offered
-- 5x what a throttled sink takes (${RATE} rows/s against ${SINK_RATE} rows/s per sink
-- subtask), every row to the throttled sink and every third to an exactly-once
-- filesystem sink, so that every channel is full for the whole run.
CREATE TABLE src (id BIGINT, k INT, v INT)
 WITH ('connector' = 'datagen', 'seed' = '7', 'rows-per-second' = '${RATE}',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '${ROWS_LAST}',
   'fields.k.min' = '0', 'fields.k.max' = '15', 'fields.v.min' = '0', 'fields.v.max' = '1000');
CREATE TABLE slow (id BIGINT, k INT, v INT) WITH ('connector' = 'blackhole', 'sink.throttle' = '${SINK_RATE}');
CREATE TABLE rows_out (id BIGINT, k INT, v INT)
 WITH ('connector' = 'filesystem', 'path' = '${OUT}', 'format' = 'csv');
EXECUTE STATEMENT SET BEGIN
INSERT INTO slow SELECT id, k, v FROM src;
INSERT INTO rows_out SELECT id, k, v FROM src WHERE MOD(id, 3) = 0;
END;
