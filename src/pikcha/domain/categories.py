"""The five category codes of the feature catalogue, found by their words."""

from __future__ import annotations

import enum
import functools
import re


class Category(enum.StrEnum):
    BAKERY = "bakery"
    MEAT = "meat"
    DAIRY = "dairy"
    FRUITS = "fruits"
    VEGETABLES = "vegetables"


# Checked in order; each stem matches a word of the shop's category names in any
# case, whatever emoji surround it.
_STEMS: tuple[tuple[Category, tuple[str, ...]], ...] = (
    (Category.BAKERY, ("зерн", "хлеб", "выпеч", "bakery", "grain", "bread")),
    (Category.MEAT, ("мяс", "рыб", "яйц", "бобов", "meat", "fish", "egg", "legume")),
    (Category.DAIRY, ("молоч", "молок", "dairy", "milk")),
    (Category.FRUITS, ("фрукт", "ягод", "fruit", "berr")),
    (Category.VEGETABLES, ("овощ", "зелен", "зелён", "vegetable", "veggie", "greens")),
)
_WORD = re.compile(r"[^\W\d_]+")


@functools.lru_cache(maxsize=4096)
def category_code(name: str | None) -> Category | None:
    """The code of a shop category name, or ``None`` when no word matches."""
    if not name:
        return None
    words = _WORD.findall(name.casefold())
    for code, stems in _STEMS:
        if any(word.startswith(stem) for word in words for stem in stems):
            return code

    return None
