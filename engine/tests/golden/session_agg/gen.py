"""Writes input/activity.json: per-user bursts separated by gaps, with disorder within the
3 s watermark bound (deterministic). Shows: sessions whose gaps touch exactly are merged
(bob 1.0 + 6.0), an out-of-order record bridging two open sessions merges them (bob 11.0),
and a record older than the watermark still opens/extends a session that has not fired
(carol 13.5 joins 17.9, but not the already fired session of 8.9)."""
import datetime as dt
import json

BASE = dt.datetime(2024, 1, 1, 9, 0, 0)


def fmt(ms):
    t = BASE + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (t.microsecond // 1000)


# (seconds, user, amount) in arrival order
events = [
    (0.0, "alice", 10), (1.0, "bob", 5), (2.5, "alice", 20), (4.0, "alice", 5),
    (6.0, "bob", 7),            # [1, 6) and [6, 11) touch -> merged
    (8.9, "carol", 1), (9.5, "alice", 3),   # alice: 4.0 + 5 = 9.0 < 9.5 -> new session
    (12.0, "bob", 2), (11.0, "bob", 4),     # out of order within bound
    (16.0, "alice", 8), (20.0, "alice", 9),
    (17.9, "carol", 6), (13.5, "carol", 2), # wm is 17.0 here: [8.9, 13.9) has fired; [13.5, 18.5) has not
    (22.0, "dave", 1), (24.0, "bob", 3), (23.5, "dave", 2), (29.0, "dave", 4),
    (30.0, "alice", 1), (31.0, "bob", 9), (35.999, "bob", 1), (41.0, "bob", 1),
    (45.0, "carol", 5), (45.0, "carol", 6), (60.0, "erin", 100),
]
with open("input/activity.json", "w", encoding="utf-8", newline="\n") as f:
    for i, (sec, user, amount) in enumerate(events, 1):
        r = {"event_id": i, "user_id": user, "amount": amount, "ts": fmt(int(round(sec * 1000)))}
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
