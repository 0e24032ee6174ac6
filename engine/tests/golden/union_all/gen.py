"""Writes input/web.json and input/app.json: two in-order click streams (deterministic)."""
import datetime as dt
import json
import random

BASE = dt.datetime(2024, 1, 1, 10, 0, 0)


def fmt(ms):
    t = BASE + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (t.microsecond // 1000)


for name, seed, pages in (("web", 11, ["home", "search", "health", "cart"]), ("app", 12, ["feed", "profile", "cart"])):
    rnd = random.Random(seed)
    ms = rnd.randint(0, 900)
    with open("input/%s.json" % name, "w", encoding="utf-8", newline="\n") as f:
        for i in range(1, 41):
            ms += rnd.choice([200, 500, 800, 1100])
            r = {"click_id": i, "user_id": rnd.choice(["u1", "u2", "u3"]), "page": rnd.choice(pages), "ts": fmt(ms)}
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
