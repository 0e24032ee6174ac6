"""Writes input/clicks.json: epoch-millis events over ~50 s, slightly out of order (deterministic)."""
import json
import random

rnd = random.Random(5)
BASE = 1704067200000  # 2024-01-01 00:00:00 UTC
rows = []
ms = 0
for i in range(1, 81):
    ms += rnd.choice([100, 250, 400, 600, 900])
    jitter = rnd.choice([0, 0, 0, -300, -700])  # within the 1 s watermark bound
    rows.append({"user_id": rnd.choice(["u1", "u2", "u3", "u4"]), "clicks": rnd.randint(1, 5),
                 "epoch_ms": BASE + max(0, ms + jitter)})
with open("input/clicks.json", "w", encoding="utf-8", newline="\n") as f:
    for r in rows:
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
