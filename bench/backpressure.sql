-- Checkpoints under backpressure: datagen offers 15,000 rows/s at parallelism 2 to a
-- blackhole throttled to 1,500 rows/s per subtask (5x too slow), in its own vertex,
-- with checkpoints every second. scripts/bench.sh runs it with buffer debloating on
-- (the default) and off, and reports how long checkpoints take.
SET 'execution.checkpointing.interval' = '1s';
CREATE TABLE src (id BIGINT, k INT, v INT)
 WITH ('connector' = 'datagen', 'seed' = '7', 'rows-per-second' = '15000',
   'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '100000000',
   'fields.k.min' = '0', 'fields.k.max' = '15', 'fields.v.min' = '0', 'fields.v.max' = '1000');
CREATE TABLE slow (id BIGINT, k INT, v INT) WITH ('connector' = 'blackhole', 'sink.throttle' = '1500');
CREATE TABLE other (id BIGINT, k INT, v INT) WITH ('connector' = 'blackhole');
EXECUTE STATEMENT SET BEGIN
INSERT INTO slow SELECT id, k, v FROM src;
INSERT INTO other SELECT id, k, v FROM src WHERE MOD(id, 3) = 0;
END;
