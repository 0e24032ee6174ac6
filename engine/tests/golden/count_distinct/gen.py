"""Writes input/visits.json: in-order visits over ~35 s, with null countries (deterministic)."""
import datetime as dt
import json
import random

rnd = random.Random(9)
BASE = dt.datetime(2024, 1, 1, 0, 0, 0)


def fmt(ms):
    t = BASE + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (t.microsecond // 1000)


ms = 0
with open("input/visits.json", "w", encoding="utf-8", newline="\n") as f:
    for i in range(1, 91):
        ms += rnd.choice([0, 100, 300, 400, 600])
        r = {"visit_id": i, "page": rnd.choice(["/home", "/cart", "/help"]),
             "user_id": rnd.choice(["u%d" % k for k in range(1, 9)]),
             "country": rnd.choice(["DE", "FR", "US", "us", None]),
             "session_len": rnd.choice([1, 2, 3, 5, 8]), "ts": fmt(ms)}
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
