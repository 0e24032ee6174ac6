import sys, shutil, os
from pyflink.table import EnvironmentSettings, TableEnvironment
out = sys.argv[1]
shutil.rmtree(out, ignore_errors=True)
t = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
t.get_config().set("parallelism.default", "1")
t.get_config().set("table.local-time-zone", "UTC")
cols = "id INT, b BOOLEAN, bi BIGINT, d DOUBLE, dm DECIMAL(10,2), dsmall DECIMAL(20,10), s STRING, ts TIMESTAMP(3), ltz TIMESTAMP_LTZ(3)"
vals = """
(1, true, 9223372036854775807, 1.0, 12.5, 0.0000000001, 'plain', TIMESTAMP '2024-01-01 00:00:10', TO_TIMESTAMP_LTZ(1704067210000, 3)),
(2, false, -5, 0.5, 0, 0.0000001, 'a,b', TIMESTAMP '2024-01-01 00:00:10.500', TO_TIMESTAMP_LTZ(1704067210500, 3)),
(3, CAST(NULL AS BOOLEAN), CAST(NULL AS BIGINT), 1.0E7, -3.14, 123.456, 'say "hi"', TIMESTAMP '2024-01-01 00:00:10.123', TO_TIMESTAMP_LTZ(1704067210120, 3)),
(4, true, 0, 1.234E-5, 99999999.99, 0, 'line
break', CAST(NULL AS TIMESTAMP(3)), CAST(NULL AS TIMESTAMP_LTZ(3))),
(5, true, 1, 123456.789, 1, 1, '', TIMESTAMP '1969-12-31 23:59:59.999', TO_TIMESTAMP_LTZ(-1, 3)),
(6, true, 1, CAST('NaN' AS DOUBLE), 1, 1, CAST(NULL AS STRING), TIMESTAMP '2024-01-01 00:00:00', TO_TIMESTAMP_LTZ(0, 3)),
(7, true, 1, CAST('Infinity' AS DOUBLE), 1, 1, ' lead space', TIMESTAMP '2024-01-01 00:00:00', TO_TIMESTAMP_LTZ(0, 3)),
(8, true, 1, -0.0, 1, 1, 'tab	x', TIMESTAMP '2024-01-01 00:00:00', TO_TIMESTAMP_LTZ(0, 3)),
(9, true, 1, 0.001, 1, 1, 'semi;colon''q', TIMESTAMP '2024-01-01 00:00:00', TO_TIMESTAMP_LTZ(0, 3)),
(10, true, 1, 9999999.0, 1, 1, 'ünï', TIMESTAMP '2024-01-01 00:00:00', TO_TIMESTAMP_LTZ(0, 3)),
(11, true, 1, 1.0E-3, 1, 1, '#hash', TIMESTAMP '2024-01-01 00:00:00', TO_TIMESTAMP_LTZ(0, 3)),
(12, true, 1, 100.0, 1, 1, 'ctl' || CHR(1) || 'x', TIMESTAMP '2024-01-01 00:00:00', TO_TIMESTAMP_LTZ(0, 3)),
(13, true, 1, 2.0E-3, 1, 1, 'cr' || CHR(13), TIMESTAMP '2024-01-01 00:00:00', TO_TIMESTAMP_LTZ(0, 3)),
(14, true, 1, 1.0E21, 1, 1, 'back\\slash/', TIMESTAMP '2024-01-01 00:00:00', TO_TIMESTAMP_LTZ(0, 3)),
(15, true, 1, 4.9E-324, 1, 1, 'x', TIMESTAMP '2024-01-01 00:00:00', TO_TIMESTAMP_LTZ(0, 3))
"""
t.execute_sql(f"CREATE TEMPORARY VIEW v AS SELECT * FROM (VALUES {vals}) AS T({', '.join(c.split()[0] for c in cols.split(', '))})")
for fmt in ["json", "csv"]:
    t.execute_sql(f"CREATE TABLE s_{fmt} ({cols}) WITH ('connector'='filesystem','path'='{out}/{fmt}','format'='{fmt}')")
t.execute_sql(f"CREATE TABLE p ({cols}) WITH ('connector'='print')")
t.execute_sql(f"CREATE TABLE p2 ({cols}) WITH ('connector'='print', 'print-identifier'='tag')")
ss = t.create_statement_set()
ss.add_insert_sql(f"INSERT INTO s_json SELECT {', '.join('CAST(' + c.split()[0] + ' AS ' + ' '.join(c.split()[1:]) + ')' for c in cols.split(', '))} FROM v")
ss.add_insert_sql(f"INSERT INTO s_csv SELECT {', '.join('CAST(' + c.split()[0] + ' AS ' + ' '.join(c.split()[1:]) + ')' for c in cols.split(', '))} FROM v")
ss.add_insert_sql(f"INSERT INTO p SELECT {', '.join('CAST(' + c.split()[0] + ' AS ' + ' '.join(c.split()[1:]) + ')' for c in cols.split(', '))} FROM v")
ss.add_insert_sql(f"INSERT INTO p2 SELECT {', '.join('CAST(' + c.split()[0] + ' AS ' + ' '.join(c.split()[1:]) + ')' for c in cols.split(', '))} FROM v")
ss.execute().wait()
