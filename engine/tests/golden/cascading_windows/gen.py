"""Writes input/metrics.json: in-order metric samples over ~70 s for 3 hosts (deterministic)."""
import datetime as dt
import json
import random

rnd = random.Random(10)
BASE = dt.datetime(2024, 1, 1, 6, 0, 0)


def fmt(ms):
    t = BASE + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (t.microsecond // 1000)


ms = 0
with open("input/metrics.json", "w", encoding="utf-8", newline="\n") as f:
    for i in range(1, 151):
        ms += rnd.choice([0, 200, 400, 500, 700])
        r = {"host": rnd.choice(["h1", "h2", "h3"]), "cpu": rnd.randint(0, 100),
             "mem": round(rnd.uniform(0, 16), 2), "ts": fmt(ms)}
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
