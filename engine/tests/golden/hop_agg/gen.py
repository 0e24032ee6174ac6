"""Writes input/trades.json: in-order trades over ~40 s (deterministic)."""
import datetime as dt
import json
import random

rnd = random.Random(7)
BASE = dt.datetime(2024, 1, 1, 12, 0, 0)


def fmt(ms):
    t = BASE + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (t.microsecond // 1000)


ms = 0
with open("input/trades.json", "w", encoding="utf-8", newline="\n") as f:
    for i in range(1, 71):
        ms += rnd.choice([0, 200, 450, 500, 800, 1000])
        r = {"trade_id": i, "symbol": rnd.choice(["AAA", "BBB"]), "volume": rnd.randint(1, 100),
             "price": rnd.choice([10.5, 10.75, 11.0, 99.125]), "ts": fmt(ms)}
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
