"""The duplicate share and rejection counts of a table."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pikcha.domain.quality import DEFAULT_THRESHOLD, TableMetrics, table_metrics

Key = tuple[str, str]

keys = st.tuples(
    st.sampled_from(["cus-1", "cus-2", "cus-3", "store-001"]),
    st.sampled_from(["h0", "h1", "h2"]),
)
key_lists = st.lists(keys, max_size=40)


def metrics(rows: int, distinct: int) -> TableMetrics:
    return TableMetrics("customers", rows, distinct)


@given(rows=key_lists)
def test_the_duplicate_share_is_repeated_rows_over_rows(rows: list[Key]) -> None:
    """Share = (rows - distinct pairs) / rows, exactly."""
    count = len(rows)
    distinct = len(set(rows))

    result = table_metrics("customers", rows)

    assert (result.rows, result.distinct) == (count, distinct)
    assert result.duplicates == count - distinct
    if rows:
        assert result.exact_share == Fraction(count - distinct, count)
        assert result.duplicate_share == pytest.approx((count - distinct) / count)


def test_an_empty_table_has_no_duplicates() -> None:
    """With no rows the share is zero, not a division error."""
    result = table_metrics("customers", [])

    assert (result.rows, result.duplicate_share, result.exact_share) == (
        0,
        0.0,
        Fraction(0),
    )
    assert not result.over(0)


@given(rows=key_lists, data=st.data())
def test_the_order_of_rows_does_not_matter(
    rows: list[Key], data: st.DataObject
) -> None:
    """Any permutation of the rows gives the same metrics."""
    shuffled = data.draw(st.permutations(rows))

    assert table_metrics("t", shuffled) == table_metrics("t", rows)


@given(
    distinct=st.lists(keys, min_size=1, unique=True),
    extra=st.integers(0, 30),
    data=st.data(),
)
def test_which_entity_repeats_does_not_matter(
    distinct: list[Key], extra: int, data: st.DataObject
) -> None:
    """Moving repeated rows from one pair to another keeps the share."""
    piled = distinct + [distinct[0]] * extra
    owners = data.draw(st.lists(st.sampled_from(distinct), min_size=extra))
    spread = distinct + owners[:extra]

    assert (
        table_metrics("t", piled).exact_share
        == table_metrics("t", spread).exact_share
        == Fraction(extra, len(distinct) + extra)
    )


@given(rows=key_lists)
def test_sending_every_row_twice_adds_one_duplicate_per_row(rows: list[Key]) -> None:
    """A re-sent table keeps its distinct pairs; each extra copy is a duplicate."""
    doubled = table_metrics("t", rows + rows)

    assert doubled.distinct == len(set(rows))
    assert doubled.duplicates == 2 * len(rows) - len(set(rows))


def test_exactly_half_is_not_over_a_half() -> None:
    """over() is strict: a share equal to the threshold raises no alarm."""
    half = metrics(rows=4, distinct=2)

    assert not half.over(0.5)
    assert not half.over("1/2")
    assert not half.over(DEFAULT_THRESHOLD)


def test_three_duplicates_in_five_rows_is_over_a_half() -> None:
    """3/5 of the rows repeating is above the default threshold."""
    result = table_metrics(
        "customers",
        [("c1", "h"), ("c1", "h"), ("c1", "h"), ("c2", "h"), ("c2", "h")],
    )

    assert result.exact_share == Fraction(3, 5)
    assert result.over(0.5)
    assert result.over(DEFAULT_THRESHOLD)


@given(rows=st.integers(1, 1000), data=st.data())
def test_over_is_strictly_above_the_threshold(rows: int, data: st.DataObject) -> None:
    """over(t) holds exactly when duplicates/rows > t."""
    distinct = data.draw(st.integers(1, rows))
    threshold = data.draw(st.fractions(0, 1))

    result = metrics(rows, distinct)

    assert result.over(threshold) == (Fraction(rows - distinct, rows) > threshold)


def test_a_float_threshold_is_read_as_its_decimal_text() -> None:
    """0.1 means one tenth, not the binary float just above it."""
    tenth = metrics(rows=10, distinct=9)

    assert not tenth.over(0.1)
    assert tenth.over(0.0999)


def test_rejections_are_counted_per_rule() -> None:
    """Each rejected row counts once under its rule's name."""
    result = table_metrics(
        "purchases",
        [("ord-1", "h")],
        ["id_present", "not_negative", "id_present", "date_not_future"],
    )

    assert result.rejected == {
        "id_present": 2,
        "not_negative": 1,
        "date_not_future": 1,
    }
    assert result.rejected_total == 4


def test_no_rejections_give_an_empty_count() -> None:
    """A table with nothing rejected reports zero."""
    result = table_metrics("stores", [("store-001", "h")])

    assert (result.rejected, result.rejected_total) == ({}, 0)
