"""Writes input/shipments.csv (no header; RFC-4180 quoting) (deterministic)."""
import csv
import datetime as dt
import random

rnd = random.Random(15)
BASE = dt.datetime(2024, 1, 1, 0, 0, 0)


def fmt(ms):
    t = BASE + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (t.microsecond // 1000)


carriers = ["DHL", "UPS, Ground", 'Fast "Express"', "la poste", "", "Zoom#1", "back\\slash"]
ms = 0
with open("input/shipments.csv", "w", encoding="utf-8", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    for i in range(1, 46):
        ms += rnd.choice([250, 500, 1000, 1500])
        w.writerow([i, rnd.choice(carriers), rnd.choice([0.5, 1.0, 2.25, 10.0, 1234.5]),
                    "%d.%02d" % (rnd.randint(0, 99), rnd.choice([0, 10, 45, 99])),
                    rnd.choice(["true", "false"]), fmt(ms)])
