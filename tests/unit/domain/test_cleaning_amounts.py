"""Money and quantities: the fast rounding equals the exact decimal rounding."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from pikcha.domain.cleaning import KOPECK, QUANTUM_QTY, money, quantity

amounts = (
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e13, max_value=1e13)
    | st.integers(0, 10**6).map(lambda n: n / 1000 + 0.0005)
    | st.integers(0, 10**6).map(lambda n: n / 200)
    | st.integers(-(10**6), 10**10)
)


def exact(value: float, quantum: Decimal) -> Decimal:
    """The shortest decimal form of the float, rounded half-even."""
    return Decimal(repr(value + 0.0)).quantize(quantum, rounding=ROUND_HALF_EVEN)


@given(amounts)
@example(-0.0)
@example(1.005)
@example(0.125)
@example(999_999_999.995)
def test_money_rounds_the_shortest_decimal_form_half_even(value: float) -> None:
    """Same value and same exponent, ties and negative zero included."""
    assert repr(money(value)) == repr(exact(value, KOPECK))


@given(amounts)
@example(2.0005)
@example(0.0625)
def test_quantity_rounds_the_shortest_decimal_form_half_even(value: float) -> None:
    """Same value and same exponent at a thousandth."""
    assert repr(quantity(value)) == repr(exact(value, QUANTUM_QTY))
