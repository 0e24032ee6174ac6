-- compare: materialized
-- Window offsets (the TVFs' optional last argument): TUMBLE, HOP with a negative offset
-- larger than its slide, CUMULATE with an offset larger than its step, a TUMBLE with a
-- negative offset, and a Window Top-N over offset windows. 700 bids, some late.
CREATE TABLE bid (
  auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING,
  `dateTime` TIMESTAMP(3), extra STRING,
  WATERMARK FOR `dateTime` AS `dateTime` - INTERVAL '4' SECOND
) WITH ('connector' = 'filesystem', 'path' = '${INPUT_DIR}/bid.json', 'format' = 'json');

CREATE TABLE tumble_17s (ws TIMESTAMP(3), we TIMESTAMP(3), n BIGINT, s BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'tumble_17s');
CREATE TABLE hop_minus_27s (ws TIMESTAMP(3), we TIMESTAMP(3), channel STRING, n BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'hop_minus_27s');
CREATE TABLE cumulate_45s (ws TIMESTAMP(3), we TIMESTAMP(3), n BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'cumulate_45s');
CREATE TABLE tumble_minus_50s (ws TIMESTAMP(3), we TIMESTAMP(3), n BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'tumble_minus_50s');
CREATE TABLE top2 (ws TIMESTAMP(3), auction BIGINT, n BIGINT, rn BIGINT) WITH ('connector' = 'print', 'print-identifier' = 'top2');
EXECUTE STATEMENT SET BEGIN
INSERT INTO tumble_17s SELECT window_start, window_end, COUNT(*), SUM(price) FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '1' MINUTE, INTERVAL '17' SECOND)) GROUP BY window_start, window_end;
INSERT INTO hop_minus_27s SELECT window_start, window_end, channel, COUNT(*) FROM TABLE(HOP(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '20' SECOND, INTERVAL '1' MINUTE, INTERVAL '-27' SECOND)) GROUP BY window_start, window_end, channel;
INSERT INTO cumulate_45s SELECT window_start, window_end, COUNT(*) FROM TABLE(CUMULATE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '30' SECOND, INTERVAL '2' MINUTE, INTERVAL '45' SECOND)) GROUP BY window_start, window_end;
INSERT INTO tumble_minus_50s SELECT window_start, window_end, COUNT(*) FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '1' MINUTE, INTERVAL '-50' SECOND)) GROUP BY window_start, window_end;
INSERT INTO top2 SELECT ws, auction, n, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY ws, we ORDER BY n DESC, auction) AS rn FROM (
  SELECT window_start AS ws, window_end AS we, auction, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(`dateTime`), INTERVAL '1' MINUTE, INTERVAL '10' SECOND)) GROUP BY window_start, window_end, auction)) WHERE rn <= 2;
END;
