"""Writes input/readings.json: epoch-millis events over ~6 h, crossing local midnight in +08:00 (deterministic)."""
import json
import random

rnd = random.Random(6)
BASE = 1704067200000 + 13 * 3600 * 1000 + 17 * 60 * 1000  # 2024-01-01 13:17 UTC = 21:17 +08:00
rows = []
ms = 0
for i in range(1, 61):
    ms += rnd.randint(60, 700) * 1000 + rnd.randint(0, 999)
    rows.append({"sensor": rnd.choice(["s1", "s2"]), "value": rnd.choice([0.5, 1.25, 2.0, 3.75, 10.0]),
                 "epoch_ms": BASE + ms})
with open("input/readings.json", "w", encoding="utf-8", newline="\n") as f:
    for r in rows:
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
