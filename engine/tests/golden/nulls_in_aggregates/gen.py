"""Writes input/measurements.json: nullable INT/BIGINT/DOUBLE/DECIMAL/STRING columns; one
window where a column is all null, negative values for AVG truncation (deterministic)."""
import datetime as dt
import json
import random
import re

rnd = random.Random(17)
BASE = dt.datetime(2024, 1, 1, 0, 0, 0)


def fmt(ms):
    t = BASE + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (t.microsecond // 1000)


def maybe(v, p=0.3):
    return None if rnd.random() < p else v


rows = []
ms = 0
for i in range(1, 61):
    ms += rnd.choice([200, 500, 800])
    window = ms // 10000
    r = {"id": i, "grp": rnd.choice(["a", "b"]),
         "i": maybe(rnd.randint(-7, 9)),
         "b": maybe(rnd.choice([-3, 1, 2, 4, 9007199254740993])),
         "d": maybe(rnd.choice([-1.5, 0.25, 2.0, 1e-3, 7.125])),
         "m": maybe("%d.%03d" % (rnd.randint(-3, 20), rnd.randint(0, 999))),
         "s": maybe(rnd.choice(["x", "yy", "Z", "éa", ""])),
         "ts": fmt(ms)}
    if window == 1:          # [10 s, 20 s): i and m all null
        r["i"] = None
        r["m"] = None
    if window == 2:          # [20 s, 30 s): everything nullable is null
        for k in ("i", "b", "d", "m", "s"):
            r[k] = None
    rows.append(r)
with open("input/measurements.json", "w", encoding="utf-8", newline="\n") as f:
    for r in rows:
        line = re.sub(r'"m":"([-0-9.]+)"', r'"m":\1', json.dumps(r, separators=(",", ":"), ensure_ascii=False))
        f.write(line + "\n")
