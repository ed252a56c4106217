"""The reconnection delays of :func:`broadcast_cli.backoff.backoff`: bounds and jitter."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator

import pytest

from broadcast_cli.backoff import backoff


def constant(value: float) -> Callable[[], float]:
    """A *rand* that always draws *value*."""
    return lambda: value


def take(delays: Iterator[float], count: int) -> list[float]:
    return list(itertools.islice(delays, count))


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.5, 0.999999])
def test_the_first_delay_is_between_half_the_initial_delay_and_the_initial_delay(draw: float) -> None:
    first = next(backoff(0.2, 10.0, 2.0, rand=constant(draw)))
    assert 0.1 <= first <= 0.2
    assert first == pytest.approx(0.2 * (0.5 + draw / 2))


def test_the_first_delay_is_never_zero_so_a_dropped_connection_is_not_retried_instantly() -> None:
    assert next(backoff(1.0, 5.0, rand=constant(0.0))) == 0.5


@pytest.mark.parametrize(("initial", "maximum", "factor"), [(0.1, 10.0, 2.0), (1.0, 3.0, 1.5), (0.5, 0.5, 3.0)])
def test_later_delays_stay_within_the_exponential_ceiling_capped_at_the_maximum(
    initial: float, maximum: float, factor: float
) -> None:
    rng = random.Random(1234)
    delays = take(backoff(initial, maximum, factor, rand=rng.random), 40)
    assert initial / 2 <= delays[0] <= initial
    for n, delay in enumerate(delays[1:], start=1):
        assert 0 <= delay <= min(maximum, initial * factor**n)


def test_with_the_largest_draw_the_delays_follow_the_ceiling_exactly() -> None:
    delays = take(backoff(0.1, 1.0, 2.0, rand=constant(1.0)), 7)
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])


def test_full_jitter_scales_the_ceiling_by_the_draw() -> None:
    draws = iter([0.0, 0.5, 0.25, 0.0])
    delays = take(backoff(1.0, 100.0, 2.0, rand=lambda: next(draws)), 4)
    assert delays == pytest.approx([0.5, 0.5 * 2.0, 0.25 * 4.0, 0.0])


def test_the_generator_never_ends() -> None:
    assert len(take(backoff(0.01, 0.02, rand=constant(0.5)), 1000)) == 1000


def test_the_default_rand_stays_within_bounds() -> None:
    delays = take(backoff(0.1, 10.0, 2.0), 50)
    assert 0.05 <= delays[0] <= 0.1
    assert all(0 <= delay <= 10.0 for delay in delays)


@pytest.mark.parametrize(
    ("initial", "maximum", "factor"),
    [(0.0, 1.0, 2.0), (-1.0, 1.0, 2.0), (2.0, 1.0, 2.0), (0.1, 1.0, 0.5)],
)
def test_invalid_parameters_are_refused(initial: float, maximum: float, factor: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        next(backoff(initial, maximum, factor))
