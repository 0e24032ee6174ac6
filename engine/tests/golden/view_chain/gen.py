"""Writes input/requests.json: in-order HTTP request log over ~40 s (deterministic)."""
import datetime as dt
import json
import random

rnd = random.Random(16)
BASE = dt.datetime(2024, 1, 1, 23, 59, 30)  # windows cross midnight


def fmt(ms):
    t = BASE + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (t.microsecond // 1000)


ms = 0
with open("input/requests.json", "w", encoding="utf-8", newline="\n") as f:
    for i in range(1, 81):
        ms += rnd.choice([100, 250, 500, 900])
        r = {"req_id": i, "method": rnd.choice(["GET", "get", "POST", "DELETE"]),
             "path": rnd.choice(["/api/users/17", "/api/orders/3", "/static/app.js", "/health", "/api/users/4"]),
             "status": rnd.choice([200, 200, 201, 304, 404, 500, 503]),
             "latency_ms": rnd.randint(1, 2000), "ts": fmt(ms)}
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
