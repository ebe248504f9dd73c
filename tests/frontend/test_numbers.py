from __future__ import annotations

import pytest

from voxserve.frontend.zh.numbers import read_decimal, read_digits, read_integer, read_number


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("0", "零"),
        ("2", "二"),
        ("10", "十"),
        ("15", "十五"),
        ("20", "二十"),
        ("115", "一百一十五"),
        ("200", "二百"),
        ("1005", "一千零五"),
        ("1050", "一千零五十"),
        ("1500", "一千五百"),
        ("2000", "两千"),
        ("10050", "一万零五十"),
        ("12000", "一万两千"),
        ("20000", "两万"),
        ("100000", "十万"),
        ("150000", "十五万"),
        ("1000000", "一百万"),
        ("100000000", "一亿"),
        ("100010000", "一亿零一万"),
        ("100000005", "一亿零五"),
        ("120000000", "一亿两千万"),
        ("200000000", "两亿"),
        ("1000000000000", "一万亿"),
    ],
)
def test_integers(digits, expected):
    assert read_integer(digits) == expected


def test_leading_zero_and_very_long_integers_are_read_digit_by_digit():
    assert read_integer("007") == "零零七"
    assert read_integer("12345678901234567") == "一二三四五六七八九零一二三四五六七"


def test_digits_and_yao():
    assert read_digits("2024") == "二零二四"
    assert read_digits("110", yao=True) == "幺幺零"


def test_decimals_and_signs():
    assert read_decimal("3", "14") == "三点一四"
    assert read_decimal("", "5") == "零点五"
    assert read_number("-3.5") == "负三点五"
    assert read_number("0.05") == "零点零五"


def test_rejects_non_digits():
    with pytest.raises(ValueError):
        read_integer("12a")
