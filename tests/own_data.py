"""A user's own data set, not the generator's: a number and a city (categorical).

What a new user sends instead of ``/generate``; used by the API tests, the browser tests
and the screenshots."""

from __future__ import annotations

import random
from typing import Any

CITIES = ("Berlin", "Lyon", "Oslo")


def own_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` labelled rows ``{"size", "city", "target"}``: the label is which side of 5 the
    size is on, flipped in Oslo; Lyon is the most frequent city (weights 2:3:1)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        city = rng.choices(CITIES, weights=(2, 3, 1))[0]
        size = round(rng.uniform(0, 10), 3)
        rows.append({"size": size, "city": city, "target": int(size > 5) ^ (city == "Oslo")})
    return rows
