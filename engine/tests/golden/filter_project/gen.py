"""Writes input/products.json (deterministic)."""
import json
import random
import re

rnd = random.Random(1)
names = ["apple", "axe", "b", "box", "chair", "drill", "fox", "hammer", "lamp", "mixer",
         "nail", "oven", "pot", "rake", "saw", "tent", "xylophone", "yo-yo", "zip", "Anvil"]
cats = ["Tools", "Garden", "Toys", "Kitchen", "Office"]
prices = [19.99, 0.1, 2.5, 100.0, 1234567.891, 1e-05, 12345678.9, 49.95, -2.5, 75.25, 3.0, 0.3]
amounts = ["10.00", "0.50", "123.45", "1000.00", "-7.25", "0.01", "99999999.99", "5"]
notes = ["  padded  ", "fragile", "", " x", None, None, "gift wrap "]
codes = ["A11", "A21", "B17", "AX1-9", "a_1", "C"]

rows = []
for i in range(1, 49):
    r = {
        "id": i,
        "name": rnd.choice(names),
        "category": rnd.choice(cats),
        "price": rnd.choice(prices),
        "qty": rnd.choice([0, 1, 2, 3, 4, 7, 10, -1]),
        "amount": rnd.choice(amounts),
        "active": rnd.choice([True, False]),
        "note": rnd.choice(notes),
        "code": rnd.choice(codes),
    }
    # sprinkle nulls
    for col in ("name", "category", "price", "qty", "amount", "active", "code"):
        if rnd.random() < 0.08:
            r[col] = None
    rows.append(r)

with open("input/products.json", "w", encoding="utf-8", newline="\n") as f:
    for r in rows:
        line = json.dumps(r, separators=(",", ":"))
        # DECIMAL values as JSON numbers, written exactly (e.g. 10.00)
        line = re.sub(r'"amount":"([-0-9.]+)"', r'"amount":\1', line)
        f.write(line + "\n")
