"""Writes input/sales.json: in-order events over ~65 s for 3 shops (deterministic)."""
import datetime as dt
import json
import random
import re

rnd = random.Random(3)
BASE = dt.datetime(2024, 1, 1, 0, 0, 0)


def fmt(ms):
    t = BASE + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (t.microsecond // 1000)


ms = 0
rows = []
for i in range(1, 121):
    ms += rnd.choice([0, 13, 250, 333, 500, 777, 1000])
    rows.append({
        "id": i,
        "shop": rnd.choice(["north", "south", "east"]),
        "units": rnd.randint(-5, 40),
        "qty": rnd.choice([1, 2, 3, 10, 1000000000000]),
        "price": rnd.choice([0.1, 0.2, 1.5, 9.99, 10.0, 1e7, 3.3333]),
        "amount": "%d.%02d" % (rnd.randint(0, 500), rnd.choice([0, 1, 5, 10, 33, 50, 99])),
        "ts": fmt(ms),
    })
# exact window boundaries
rows.append({"id": 121, "shop": "north", "units": 1, "qty": 1, "price": 1.0, "amount": "1.00", "ts": fmt(69999)})
rows.append({"id": 122, "shop": "north", "units": 2, "qty": 2, "price": 2.0, "amount": "2.00", "ts": fmt(70000)})

with open("input/sales.json", "w", encoding="utf-8", newline="\n") as f:
    for r in rows:
        line = json.dumps(r, separators=(",", ":"))
        line = re.sub(r'"amount":"([-0-9.]+)"', r'"amount":\1', line)
        f.write(line + "\n")
