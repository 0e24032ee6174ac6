import sys, shutil, os, traceback
from pyflink.table import EnvironmentSettings, TableEnvironment
base = "/tmp/fv2"
shutil.rmtree(base + "/out", ignore_errors=True)
t = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
t.get_config().set("parallelism.default", "1")
t.get_config().set("table.local-time-zone", "UTC")
def run(name, sql):
    try:
        rows = list(t.execute_sql(sql).collect())
        print("RESULT", name, [str(r) for r in rows], flush=True)
    except Exception as e:
        msg = str(e).split("\n")
        causes = [l for l in msg if "Caused by" in l or "Exception:" in l][:6]
        print("ERROR", name, causes, flush=True)
# writes
t.execute_sql("CREATE TABLE wj (d1 DECIMAL(10,2), d2 DECIMAL(10,2), d3 DECIMAL(10,2), s1 STRING, s2 STRING, x DOUBLE, s3 STRING) WITH ('connector'='filesystem','path'='%s/out/json','format'='json')" % base)
t.execute_sql("CREATE TABLE wc (d1 DECIMAL(10,2), d2 DECIMAL(10,2), d3 DECIMAL(10,2), s1 STRING, s2 STRING, x DOUBLE, s3 STRING) WITH ('connector'='filesystem','path'='%s/out/csv','format'='csv')" % base)
t.execute_sql("CREATE TABLE wc2 (d1 DECIMAL(10,2), s1 STRING, s3 STRING) WITH ('connector'='filesystem','path'='%s/out/csv2','format'='csv','csv.field-delimiter'=';','csv.null-literal'='NULL','csv.quote-character'='''')" % base)
v = "SELECT CAST(100.00 AS DECIMAL(10,2)), CAST(-100.00 AS DECIMAL(10,2)), CAST(0.10 AS DECIMAL(10,2)), 'abcdefghijklmnopqrstuvwxy', 'abcdefghijklmnopqrstuvwx', CAST(0.0001 AS DOUBLE), CAST(NULL AS STRING)"
ss = t.create_statement_set()
ss.add_insert_sql("INSERT INTO wj " + v)
ss.add_insert_sql("INSERT INTO wc " + v)
ss.add_insert_sql("INSERT INTO wc2 SELECT CAST(1.5 AS DECIMAL(10,2)), 'it''s a;b', CAST(NULL AS STRING)")
ss.execute().wait()
# csv reads
csv_cases = {
 "R1": "1,,,,\n", "R2": ",x,1.5,true,2024-01-01 00:00:00\n", "R3": " 2 ,x, 1.5 , TRUE ,2024-01-01 00:00:00.5\n",
 "R4": "3,x\n", "R5": "4,x,1,yes,2024-01-01T00:00:00\n", "R6": "5,\"q\"\"uo,te\",2,false,2024-01-01 00:00:00\n",
 "R7": "6,x,NaN,false,\n",
}
for k, body in csv_cases.items():
    os.makedirs(f"{base}/in/{k}", exist_ok=True)
    open(f"{base}/in/{k}/f.csv", "w").write(body)
    t.execute_sql(f"CREATE TABLE {k} (a INT, b STRING, c DOUBLE, d BOOLEAN, e TIMESTAMP(3)) WITH ('connector'='filesystem','path'='{base}/in/{k}','format'='csv')")
    run(k, f"SELECT a, b, c, d, e, b IS NULL, CHAR_LENGTH(b) FROM {k}")
json_cases = {
 "J1": '{"a":"12","b":12,"c":"1.5","d":"TRUE","e":"2024-01-01 00:00:00.5","f":"1.005","g":"2024-01-01 00:00:00Z"}\n',
 "J2": '{"a":1.9,"b":{"x":[1, 2]},"c":1,"d":1,"f":123456.789}\n',
 "J3": '{"e":"2024-01-01T00:00:00"}\n',
 "J4": '{"g":"2024-01-01 00:00:00"}\n',
 "J5": '{"a":"abc","b":"ok"}\n',
 "J6": '{bad\n{"a":7}\n',
 "J7": '{"a":1}\n\n{"a":2}\n',
 "J8": '{"b":true,"d":"yes","c":"Infinity"}\n',
}
for k, body in json_cases.items():
    os.makedirs(f"{base}/in/{k}", exist_ok=True)
    open(f"{base}/in/{k}/f.json", "w").write(body)
    t.execute_sql(f"CREATE TABLE {k} (a INT, b STRING, c DOUBLE, d BOOLEAN, e TIMESTAMP(3), f DECIMAL(5,2), g TIMESTAMP_LTZ(3)) WITH ('connector'='filesystem','path'='{base}/in/{k}','format'='json')")
    run(k, f"SELECT * FROM {k}")
    if k in ("J5", "J6"):
        t.execute_sql(f"CREATE TABLE {k}i (a INT, b STRING, c DOUBLE, d BOOLEAN, e TIMESTAMP(3), f DECIMAL(5,2), g TIMESTAMP_LTZ(3)) WITH ('connector'='filesystem','path'='{base}/in/{k}','format'='json','json.ignore-parse-errors'='true')")
        run(k + "i", f"SELECT * FROM {k}i")
