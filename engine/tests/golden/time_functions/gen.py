"""Writes input/events.json (deterministic)."""
import datetime as dt
import json
import random

rnd = random.Random(2)
BASE = dt.datetime(2024, 2, 28, 22, 58, 0)  # crosses a leap day, midnight and a month end


def fmt(t):
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (t.microsecond // 1000)


urls = ["https://shop.example.com/item.html?id=42", "http://example.org/a/b/page.html?x=1&id=7",
        "https://example.com/", "ftp://files.example.net/x?id=", "not a url", None]
rows = []
for i in range(1, 41):
    t = BASE + dt.timedelta(milliseconds=rnd.randrange(0, 26 * 3600 * 1000))
    epoch_ms = int((t - dt.datetime(1970, 1, 1)).total_seconds() * 1000)
    alt = t.strftime("%Y/%m/%d %H:%M") if i % 5 else "31/12/2024"
    r = {
        "id": i,
        "ts": fmt(t),
        "ts_str": t.strftime("%Y-%m-%d %H:%M:%S") if i % 7 else "not a date",
        "alt_str": alt,
        "epoch_ms": epoch_ms + rnd.choice([0, 1, 999, 123456]),
        "url": rnd.choice(urls),
    }
    rows.append(r)
# a few fixed edge cases
rows.append({"id": 41, "ts": "2024-02-29 00:00:00.000", "ts_str": "2024-02-29 00:00:00", "alt_str": "2024/02/29 00:00",
             "epoch_ms": 0, "url": "https://a.b/c.html?id=0"})
rows.append({"id": 42, "ts": "2024-12-31 23:59:59.999", "ts_str": "2024-12-31 23:59:59", "alt_str": "2024/12/31 23:59",
             "epoch_ms": 1735689599999, "url": "http://x.y/?id=123456789"})
rows.append({"id": 43, "ts": "1999-01-01 00:00:00.001", "ts_str": None, "alt_str": None,
             "epoch_ms": 946684800000, "url": "https://UPPER.example.com/Index.html?id=9"})

with open("input/events.json", "w", encoding="utf-8", newline="\n") as f:
    for r in rows:
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
