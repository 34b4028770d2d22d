"""Category codes found from the shop's category names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pikcha.domain.categories import Category, category_code

SHOP_NAMES = [
    ("Зерновые и хлебобулочные изделия", Category.BAKERY),
    ("Мясо, рыба, яйца и бобовые", Category.MEAT),
    ("Молочные продукты", Category.DAIRY),
    ("Фрукты и ягоды", Category.FRUITS),
    ("Овощи и зелень", Category.VEGETABLES),
]
EMOJI = "🥖🥩🥛🍏🦥🥦🧀🍞🐟✨"

emoji = st.text(alphabet=EMOJI, max_size=3)
white = st.text(alphabet=" \t\n\u00a0\u3000", max_size=3)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("🥖🥖 Зерновые и хлебобулочные изделия", Category.BAKERY),
        ("🥩🥩 Мясо, рыба, яйца и бобовые", Category.MEAT),
        ("🥛🥛 Молочные продукты", Category.DAIRY),
        ("🍏🍏 Фрукты и ягоды", Category.FRUITS),
        ("🥦🥦 Овощи и зелень", Category.VEGETABLES),
    ],
)
def test_each_shop_category_has_its_code(name: str, code: Category) -> None:
    """The five category names of the shop map to the five codes."""
    assert category_code(name) is code


def test_the_five_names_give_five_different_codes() -> None:
    """No two shop categories share a code."""
    assert {category_code(name) for name, _ in SHOP_NAMES} == set(Category)


@given(
    pair=st.sampled_from(SHOP_NAMES),
    upper=st.lists(st.booleans(), max_size=40),
    before=st.tuples(white, emoji, white),
    after=st.tuples(white, emoji, white),
)
def test_case_emoji_and_white_space_do_not_change_the_code(
    pair: tuple[str, Category],
    upper: list[bool],
    before: tuple[str, str, str],
    after: tuple[str, str, str],
) -> None:
    """Any letter case and any emoji or white space around the name keep its code."""
    name, code = pair
    flags = upper + [False] * len(name)
    mixed = "".join(
        ch.upper() if up else ch.lower() for ch, up in zip(name, flags, strict=False)
    )

    assert category_code("".join(before) + mixed + "".join(after)) is code


@pytest.mark.parametrize(
    "name",
    [None, "", "   ", "🧴🧴", "🧴🧴 Бытовая химия", "Электроника", "Кондитерские"],
)
def test_a_name_with_no_known_word_has_no_code(name: str | None) -> None:
    """Unknown names, blanks and None give None."""
    assert category_code(name) is None
