"""Forecasts of a regular series (daily or hourly spend, oldest first) and how good they are.

The method follows the history's length, measured in seasons (`season` steps: 7 for daily data
with a weekly cycle, 24 or 168 for hourly data):

- two seasons or more: additive Holt-Winters with a damped trend, its smoothing parameters
  chosen from a small grid by the one-step-ahead squared error on the history;
- one season or more: seasonal naive with trend (each step repeats the same step one season
  earlier, plus the average change from one season to the next);
- four points or more: a straight line fitted by least squares;
- fewer: the mean; no history at all gives zeros, named `none`.

The interval around each step is an ~80 % one: the spread of the one-step-ahead errors on the
history (`fitted_error`, their root mean square), widened with the horizon as the method's own
error model says (how an error made today carries into later steps). Forecasts are spend, so
every value and bound is clipped at zero unless asked otherwise.

Pure Python on purpose: a few hundred points per series, and no dependency to carry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from statistics import NormalDist

HOLT_WINTERS = "holt-winters"
SEASONAL_NAIVE = "seasonal-naive-trend"
LINEAR_TREND = "linear-trend"
MEAN = "mean"
NONE = "none"
METHODS = (HOLT_WINTERS, SEASONAL_NAIVE, LINEAR_TREND, MEAN, NONE)

INTERVAL = 0.8
_Z = NormalDist().inv_cdf(0.5 + INTERVAL / 2)
MIN_TREND_POINTS = 4

ALPHAS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7)
"""Level smoothing."""
TREND_SHARES = (0.0, 0.1, 0.3)
"""Trend smoothing as a share of the level's (the error-correction form's beta = alpha x share)."""
GAMMAS = (0.05, 0.15, 0.3, 0.5)
"""Season smoothing; a pair with gamma > 1 - alpha is skipped (it is not a stable model)."""
PHIS = (0.9, 0.98)
"""Trend damping: a trend fades instead of running on for a whole month ahead."""


@dataclass(frozen=True, slots=True)
class Forecast:
    method: str
    values: list[float]
    lower: list[float]
    upper: list[float]
    fitted_error: float  # root mean square of the one-step-ahead errors on the history


@dataclass(frozen=True, slots=True)
class Backtest:
    """Rolling-origin errors of `method` (the one the forecast of the whole history uses).

    `wape` is the sum of absolute errors over the sum of absolute actual values, `mape` the mean
    of absolute errors over actual values (steps whose actual value is zero left out); both are
    fractions (0.12 is 12 %), None when nothing could be measured. `folds` counts the origins
    evaluated: an origin whose history is too short for the method is skipped.
    """

    method: str
    mape: float | None
    wape: float | None
    folds: int


@dataclass(frozen=True, slots=True)
class Projection:
    """Spend at the end of a period: what is spent already plus the forecast of the rest."""

    expected: float
    lower: float
    upper: float
    method: str


@dataclass(frozen=True, slots=True)
class _Fit:
    """A fitted method's point forecasts (unclipped) and its error model.

    The error of step h (1-based) is e_h = eps_h + sum_{j<h} psi[j-1] * eps_{h-j}: `psi` says how
    much of an error made j steps earlier is still in a later forecast; `sigma` is the spread of
    one eps. A regression adds the uncertainty of its fitted line, described by `design`: the
    number of points, the mean of their positions and the sum of squared deviations (zero when
    only a mean was fitted).
    """

    method: str
    point: list[float]
    sigma: float
    psi: list[float]
    design: tuple[int, float, float] | None = None

    def step_variances(self) -> list[float]:
        variances = []
        carried = 0.0
        for step in range(len(self.point)):
            if step:
                carried += self.psi[step - 1] ** 2
            variances.append(self.sigma**2 * (1.0 + carried + self._line(step, step)))
        return variances

    def sum_variance(self, weights: Sequence[float]) -> float:
        """Variance of sum(weights[h] * e_h) over the first len(weights) steps."""
        steps = len(weights)
        total = 0.0
        for origin in range(steps):
            coefficient = weights[origin]
            for later in range(origin + 1, steps):
                coefficient += weights[later] * self.psi[later - origin - 1]
            total += coefficient * coefficient
        if self.design is not None:
            count, centre, spread = self.design
            total += sum(weights) ** 2 / count
            if spread > 0:
                offset = sum(w * (count + step - centre) for step, w in enumerate(weights))
                total += offset**2 / spread
        return self.sigma**2 * total

    def _line(self, first: int, second: int) -> float:
        if self.design is None:
            return 0.0
        count, centre, spread = self.design
        value = 1.0 / count
        if spread > 0:
            value += (count + first - centre) * (count + second - centre) / spread
        return value


def forecast(
    values: Sequence[float],
    season: int,
    horizon: int,
    *,
    method: str | None = None,
    clip_at_zero: bool = True,
) -> Forecast:
    """Forecast `horizon` steps after `values` (a regular series, oldest first).

    `method` asks for one method; a history too short for it gets the next simpler one (the
    result names the method used). Values must be finite numbers.
    """
    history = _checked(values)
    fit = _fit(history, max(1, season), max(0, horizon), method)
    low = 0.0 if clip_at_zero else -math.inf
    values_out, lower, upper = [], [], []
    for point, variance in zip(fit.point, fit.step_variances(), strict=True):
        half = _Z * math.sqrt(variance)
        values_out.append(max(low, point))
        lower.append(max(low, point - half))
        upper.append(max(low, point + half))
    return Forecast(fit.method, values_out, lower, upper, fit.sigma)


def backtest(
    values: Sequence[float],
    season: int,
    horizon: int,
    *,
    folds: int = 3,
    method: str | None = None,
) -> Backtest:
    """Rolling-origin evaluation: hold out the last `horizon` points, forecast them from the
    rest, compare; then the same from `horizon` points earlier, `folds` times in all. The
    method is the one the forecast of all of `values` uses, or the one asked for (or the next
    simpler one the whole history allows)."""
    history = _checked(values)
    season = max(1, season)
    method = _fit(history, season, 0, method).method
    absolute_errors = absolute_actuals = 0.0
    ratios: list[float] = []
    done = 0
    for fold in range(1, max(0, folds) + 1):
        origin = len(history) - fold * horizon
        if horizon <= 0 or origin < 1:
            break
        predicted = forecast(history[:origin], season, horizon, method=method)
        if predicted.method != method:
            continue
        actual = history[origin : origin + horizon]
        for truth, guess in zip(actual, predicted.values, strict=True):
            error = abs(truth - guess)
            absolute_errors += error
            absolute_actuals += abs(truth)
            if truth != 0:
                ratios.append(error / abs(truth))
        done += 1
    wape = None
    if done and absolute_actuals > 0:
        wape = absolute_errors / absolute_actuals
    elif done and absolute_errors == 0:
        wape = 0.0
    mape = sum(ratios) / len(ratios) if ratios else None
    return Backtest(method, mape, wape, done)


def period_end_projection(
    spent_so_far: Decimal | float,
    daily_history: Sequence[float],
    days_left: float,
    season: int = 7,
) -> Projection:
    """Spend at the end of a period (a month, the next 30 days).

    `daily_history` holds whole days, oldest first, ending with the last complete day. The
    day in progress is the forecast's first step: when `days_left` has a fraction, that
    fraction of it is still to come (spread evenly over the day); then whole days. The interval
    is that of the sum of the remaining days, whose errors are correlated as the method's error
    model says, not that of each day.
    """
    spent = float(spent_so_far)
    if days_left <= 0:
        return Projection(spent, spent, spent, NONE)
    steps = math.ceil(days_left)
    weights = [1.0] * steps
    fraction = days_left - math.floor(days_left)
    if fraction > 0:
        weights[0] = fraction
    fit = _fit(_checked(daily_history), max(1, season), steps, None)
    points = [max(0.0, p) for p in fit.point]
    remaining = sum(w * p for w, p in zip(weights, points, strict=True))
    half = _Z * math.sqrt(fit.sum_variance(weights))
    return Projection(
        expected=spent + remaining,
        lower=spent + max(0.0, remaining - half),
        upper=spent + max(0.0, remaining + half),
        method=fit.method,
    )


def _checked(values: Sequence[float]) -> list[float]:
    history = [float(v) for v in values]
    if not all(math.isfinite(v) for v in history):
        raise ValueError("a series to forecast holds finite numbers only (no NaN or infinity)")
    return history


def _fit(history: list[float], season: int, horizon: int, method: str | None) -> _Fit:
    if method is not None and method not in METHODS[:-1]:
        raise ValueError(f"unknown forecast method {method!r}; one of {', '.join(METHODS[:-1])}")
    wanted = METHODS.index(method) if method is not None else 0
    count = len(history)
    if wanted <= 0 and count >= max(2 * season, MIN_TREND_POINTS + 2):
        return _holt_winters(history, season, horizon)
    if wanted <= 1 and season > 1 and count >= season:
        return _seasonal_naive(history, season, horizon)
    if wanted <= 2 and count >= MIN_TREND_POINTS:
        return _linear_trend(history, horizon)
    if count:
        return _mean(history, horizon)
    return _Fit(NONE, [0.0] * horizon, 0.0, [0.0] * horizon)


# --- Holt-Winters -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Smoothing:
    alpha: float
    beta: float
    gamma: float
    phi: float


def _holt_winters(history: list[float], season: int, horizon: int) -> _Fit:
    start = _initial_state(history, season)
    gammas = GAMMAS if season > 1 else (0.0,)
    best: tuple[float, _Smoothing] | None = None
    for alpha in ALPHAS:
        for share in TREND_SHARES:
            for gamma in gammas:
                if gamma > 1 - alpha:
                    continue
                for phi in PHIS:
                    smoothing = _Smoothing(alpha, alpha * share, gamma, phi)
                    squared, _ = _smooth(history, season, start, smoothing)
                    if best is None or squared < best[0]:
                        best = (squared, smoothing)
    assert best is not None
    squared, chosen = best
    _, (level, trend, seasonal) = _smooth(history, season, start, chosen)
    count = len(history)
    point = []
    damping = 0.0
    for step in range(1, horizon + 1):
        damping += chosen.phi**step
        point.append(level + damping * trend + seasonal[(count + step - 1) % season])
    psi = []
    damping = 0.0
    for lag in range(1, horizon):
        damping += chosen.phi**lag
        psi.append(
            chosen.alpha + chosen.beta * damping + (chosen.gamma if lag % season == 0 else 0.0)
        )
    sigma = math.sqrt(squared / (count - season))
    return _Fit(HOLT_WINTERS, point, sigma, psi)


def _initial_state(history: list[float], season: int) -> tuple[float, float, list[float]]:
    """Level, trend and season before the first point, from the first two seasons."""
    first = sum(history[:season]) / season
    second = sum(history[season : 2 * season]) / season
    trend = (second - first) / season
    level = first - trend * (season + 1) / 2
    middle = (season - 1) / 2
    seasonal = [
        sum(
            history[index + cycle * season] - (mean + trend * (index - middle))
            for cycle, mean in enumerate((first, second))
        )
        / 2
        for index in range(season)
    ]
    shift = sum(seasonal) / season
    return level, trend, [s - shift for s in seasonal]


def _smooth(
    history: list[float],
    season: int,
    start: tuple[float, float, list[float]],
    smoothing: _Smoothing,
) -> tuple[float, tuple[float, float, list[float]]]:
    """One pass in error-correction form: the squared one-step-ahead errors after the first
    season (which the start was estimated from), and the final state."""
    alpha, beta, gamma, phi = smoothing.alpha, smoothing.beta, smoothing.gamma, smoothing.phi
    level, trend, first_season = start
    seasonal = list(first_season)
    squared = 0.0
    for index, value in enumerate(history):
        position = index % season
        damped = phi * trend
        error = value - (level + damped + seasonal[position])
        if index >= season:
            squared += error * error
        level += damped + alpha * error
        trend = damped + beta * error
        seasonal[position] += gamma * error
    return squared, (level, trend, seasonal)


# --- the simpler methods --------------------------------------------------------------------------


def _seasonal_naive(history: list[float], season: int, horizon: int) -> _Fit:
    count = len(history)
    changes = [history[t] - history[t - season] for t in range(season, count)]
    drift = sum(changes) / len(changes) / season if changes else 0.0
    point = [
        history[count - season + (step - 1) % season] + drift * season * ((step - 1) // season + 1)
        for step in range(1, horizon + 1)
    ]
    if changes:
        sigma = math.sqrt(sum((c - drift * season) ** 2 for c in changes) / len(changes))
    else:
        sigma = _spread(history)
    psi = [1.0 if lag % season == 0 else 0.0 for lag in range(1, horizon)]
    return _Fit(SEASONAL_NAIVE, point, sigma, psi)


def _linear_trend(history: list[float], horizon: int) -> _Fit:
    count = len(history)
    centre = (count - 1) / 2
    mean = sum(history) / count
    spread = sum((x - centre) ** 2 for x in range(count))
    slope = sum((x - centre) * (y - mean) for x, y in enumerate(history)) / spread
    point = [mean + slope * (count - 1 + step - centre) for step in range(1, horizon + 1)]
    residuals = [y - (mean + slope * (x - centre)) for x, y in enumerate(history)]
    sigma = math.sqrt(sum(r * r for r in residuals) / (count - 2))
    return _Fit(LINEAR_TREND, point, sigma, [0.0] * horizon, (count, centre, spread))


def _mean(history: list[float], horizon: int) -> _Fit:
    count = len(history)
    mean = sum(history) / count
    return _Fit(MEAN, [mean] * horizon, _spread(history), [0.0] * horizon, (count, 0.0, 0.0))


def _spread(history: list[float]) -> float:
    """The sample standard deviation; with a single point, unknown: the value itself stands
    for it, so the interval is as wide as what is forecast."""
    count = len(history)
    mean = sum(history) / count
    if count < 2:
        return abs(mean)
    return math.sqrt(sum((v - mean) ** 2 for v in history) / (count - 1))
