"""Writes input/events.json: a hand-made arrival sequence with late events around window
boundaries. Watermark = max(ts) - 2 s, emitted after each event. Windows: TUMBLE 10 s and
HOP (slide 5 s, size 10 s). Comments give the watermark *before* each event."""
import datetime as dt
import json

BASE = dt.datetime(2024, 1, 1, 0, 0, 0)


def fmt(ms):
    t = BASE + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (t.microsecond // 1000)


# (ts in seconds, note)
events = [
    (1.000, "on time"),
    (3.000, "on time"),
    (8.000, "on time"),
    (11.999, "wm before: 6.000; after: 9.999 -> tumble [0,10), hop [-5,5) and hop [0,10) fire"),
    (9.999, "wm 9.999: LATE for [0,10) (end-1 = 9.999 <= wm); hop [5,15) still open -> counted there"),
    (10.000, "wm 9.999: on time, [10,20)"),
    (9.000, "wm 9.999: late for [0,10), counted in hop [5,15)"),
    (13.000, "wm after: 11.000"),
    (10.500, "wm 11.000: on time ([10,20) open)"),
    (25.000, "wm after: 23.000 -> tumble [10,20), hop [5,15) and hop [10,20) fire; hop [15,25) stays open"),
    (19.000, "wm 23.000: late for tumble [10,20) and hop [10,20); hop [15,25) open -> counted"),
    (14.000, "wm 23.000: late everywhere (hop [5,15) and [10,20) fired)"),
    (21.000, "wm 23.000: on time for [20,30)"),
    (22.999, "wm 23.000: on time for [20,30) (23.000 < 29.999)"),
    (31.000, "wm after: 29.000"),
    (29.999, "wm 29.000: on time"),
    (32.000, "wm after: 30.000 -> [20,30) fires"),
    (29.998, "wm 30.000: late"),
    (30.000, "wm 30.000: on time for [30,40)"),
    (45.000, "wm after: 43.000"),
    (40.000, "wm 43.000: on time (tumble [40,50), hop [35,45) and [40,50) are open)"),
    (35.000, "wm 43.000: late for tumble [30,40); hop [35,45) open -> counted"),
    (60.000, "wm after: 58.000"),
    (1.000, "very late"),
]
with open("input/events.json", "w", encoding="utf-8", newline="\n") as f:
    for i, (sec, note) in enumerate(events, 1):
        r = {"event_id": i, "ts": fmt(int(round(sec * 1000))), "note": note}
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
