"""Writes input/pageviews.json: in-order page views over ~45 s (deterministic)."""
import datetime as dt
import json
import random

rnd = random.Random(8)
BASE = dt.datetime(2024, 1, 1, 8, 0, 0)


def fmt(ms):
    t = BASE + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (t.microsecond // 1000)


ms = 0
with open("input/pageviews.json", "w", encoding="utf-8", newline="\n") as f:
    for i in range(1, 61):
        ms += rnd.choice([100, 500, 700, 900, 1200, 1500])
        r = {"view_id": i, "site": rnd.choice(["a.com", "b.org"]), "user_id": rnd.choice(["u1", "u2", "u3", "u4", "u5"]),
             "num_bytes": rnd.randint(100, 5000), "ts": fmt(ms)}
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
