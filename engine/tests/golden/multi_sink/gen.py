"""Writes input/orders.json: in-order orders over ~30 s (deterministic)."""
import datetime as dt
import json
import random
import re

rnd = random.Random(13)
BASE = dt.datetime(2024, 1, 1, 15, 30, 0)


def fmt(ms):
    t = BASE + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (t.microsecond // 1000)


ms = 0
with open("input/orders.json", "w", encoding="utf-8", newline="\n") as f:
    for i in range(1, 51):
        ms += rnd.choice([100, 300, 600, 900])
        r = {"order_id": i, "customer": rnd.choice(["Acme, Inc.", "Bob's", "Carla", "D \"Quoted\"", "ed"]),
             "status": rnd.choice(["NEW", "PAID", "SHIPPED", "CANCELLED"]),
             "total": "%d.%02d" % (rnd.randint(1, 300), rnd.choice([0, 5, 25, 99])),
             "priority": rnd.choice([True, False]), "ts": fmt(ms)}
        line = re.sub(r'"total":"([-0-9.]+)"', r'"total":\1', json.dumps(r, separators=(",", ":")))
        f.write(line + "\n")
