"""Reading numbers aloud in Mandarin: digit strings to Chinese characters.

Pure string functions over ASCII digit strings; no regexes over running text
(that is ``normalize``'s job). Readings follow everyday Putonghua:

- integers up to 16 digits use 十/百/千 inside 4-digit groups and 万/亿/万亿
  between groups, with 零 for skipped places (1005 → 一千零五, 10050 → 一万零五十),
  a bare 十 at the start (15 → 十五, 150000 → 十五万) and 两 for a leading 2 before
  千/万/亿 (2000 → 两千, 20000 → 两万);
- longer integers and integers with a leading zero ("007") are read digit by digit;
- decimals read the fraction digit by digit (3.14 → 三点一四).
"""

from __future__ import annotations

DIGITS = "零一二三四五六七八九"
"""Chinese digit for each ASCII digit, index = value."""

_GROUP_UNITS = ("", "万", "亿", "万亿")
_PLACE_UNITS = ("千", "百", "十", "")
MAX_INTEGER_DIGITS = 16
"""Longer integers are read digit by digit (no unit beyond 万亿 is in common use)."""


def read_digits(digits: str, yao: bool = False) -> str:
    """Digit by digit ("2024" → 二零二四); ``yao`` reads 1 as 幺 (phone numbers)."""
    if yao:
        return "".join("幺" if d == "1" else DIGITS[int(d)] for d in digits)
    return "".join(DIGITS[int(d)] for d in digits)


def _read_group(group: str, whole_group_two: bool) -> str:
    """One 4-digit group (zero-padded) without its group unit; empty when all zeros.

    Zeros between non-zero places collapse into one 零; trailing zeros are silent.
    """
    out: list[str] = []
    pending_zero = False
    for digit, unit in zip(group, _PLACE_UNITS, strict=True):
        if digit == "0":
            pending_zero = bool(out)
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        if digit == "2" and (unit == "千" or (unit == "" and whole_group_two)):
            out.append("两")
        else:
            out.append(DIGITS[int(digit)])
        out.append(unit)
    return "".join(out)


def read_integer(digits: str) -> str:
    """Cardinal reading of a non-negative ASCII integer ("10050" → 一万零五十).

    Leading zeros ("007") and more than ``MAX_INTEGER_DIGITS`` digits fall back to
    ``read_digits``. Does not accept signs, separators or decimal points.
    """
    if not digits.isascii() or not digits.isdigit():
        raise ValueError(f"not an ASCII digit string: {digits!r}")
    if len(digits) > 1 and digits[0] == "0":
        return read_digits(digits)
    if len(digits) > MAX_INTEGER_DIGITS:
        return read_digits(digits)
    if digits == "0":
        return "零"
    width = -(-len(digits) // 4) * 4
    padded = digits.rjust(width, "0")
    groups = [padded[i : i + 4] for i in range(0, width, 4)]
    out: list[str] = []
    for k, group in enumerate(groups):
        unit = _GROUP_UNITS[len(groups) - 1 - k]
        value = int(group)
        if value == 0:
            continue
        # A group below 1000 after a non-zero higher group starts with an audible 零.
        if out and value < 1000:
            out.append("零")
        # 两万 / 两亿 but 二 for the units group itself (2 → 二).
        out.append(_read_group(group, whole_group_two=bool(unit)))
        out.append(unit)
    text = "".join(out)
    # 一十五 → 十五 only at the very start (一百一十五 keeps its 一).
    if text.startswith("一十"):
        text = text[1:]
    return text


def read_decimal(integer_part: str, fraction_part: str) -> str:
    """Decimal reading ("3", "14" → 三点一四); an empty integer part reads as 零."""
    head = read_integer(integer_part) if integer_part else "零"
    if not fraction_part:
        return head
    return head + "点" + read_digits(fraction_part)


def read_number(text: str) -> str:
    """An optionally signed integer or decimal in ASCII ("-3.5" → 负三点五)."""
    sign = ""
    if text[:1] in "+-":
        sign = "负" if text[0] == "-" else "正"
        text = text[1:]
    if "." in text:
        integer_part, fraction_part = text.split(".", 1)
        return sign + read_decimal(integer_part, fraction_part)
    return sign + read_integer(text)
