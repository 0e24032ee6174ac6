"""Writes input/readings.json: events generated in order, then locally shuffled so that each
event is at most 4.0 s older than the max seen before it (the watermark bound is 5 s), so no
event is late (deterministic)."""
import datetime as dt
import json
import random

rnd = random.Random(14)
BASE = dt.datetime(2024, 1, 1, 0, 0, 0)


def fmt(ms):
    t = BASE + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (t.microsecond // 1000)


events = []
ms = 0
for i in range(1, 101):
    ms += rnd.choice([100, 300, 500, 700])
    events.append((ms, i))
# delay each event's arrival by up to 4 s of event time, then order by arrival
arrival = sorted(events, key=lambda e: (e[0] + rnd.choice([0, 0, 500, 1500, 2500, 4000]), e[1]))
mx = 0
with open("input/readings.json", "w", encoding="utf-8", newline="\n") as f:
    for ms, i in arrival:
        assert mx - ms <= 4000, (mx, ms)
        mx = max(mx, ms)
        r = {"seq": i, "device": "d%d" % (i % 3), "reading": (i * 37) % 101, "ts": fmt(ms)}
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
