"""Draws from the seeded generator for sizes and timings."""

from __future__ import annotations

import math
import random
from statistics import NormalDist

_NORMAL_QUANTILES = tuple(NormalDist().inv_cdf((i + 0.5) / 4096) for i in range(4096))


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    """A log-normal draw around `median`: the normal variate is read from a table of 4,096
    quantiles, much cheaper than `random.gauss` and fine-grained enough for timings and sizes."""
    return median * math.exp(sigma * _NORMAL_QUANTILES[int(rng.random() * 4096)])
