"""Rewrite rules for numeric expressions in Mandarin text (dates, times, money, ...).

Each rule is a precompiled regex plus a function building the Chinese reading.
``RULES`` is ordered: specific patterns (dates, times, phone numbers, money,
percentages, units) run before generic ones (ranges, negative numbers, plain
numbers), so "2024-03-05" is a date, not a range, and "-5" after a word is a
negative number. The rules see text whose full-width forms are already ASCII;
they do not touch punctuation other than what they consume.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from voxserve.frontend.zh.numbers import read_decimal, read_digits, read_integer, read_number
from voxserve.frontend.zh.tables import CURRENCY_PREFIX, CURRENCY_SUFFIX, MAGNITUDE_SUFFIX, UNITS

Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _re(pattern: str) -> re.Pattern[str]:
    # ASCII: \d must not match other scripts' digits (٣, ३), which the readers cannot read.
    return re.compile(pattern, re.ASCII)


_NUM = r"\d+(?:\.\d+)?"


def _money_amount(text: str) -> str:
    """A money amount; trailing fraction zeros are silent (12.50 → 十二点五)."""
    if "." in text:
        integer_part, fraction_part = text.split(".", 1)
        return read_decimal(integer_part, fraction_part.rstrip("0"))
    return read_integer(text)


def _date_ymd(m: re.Match[str]) -> str:
    year, month, day, suffix = m.group(1), int(m.group(3)), int(m.group(4)), m.group(5)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return m.group(0)
    return f"{read_digits(year)}年{read_integer(str(month))}月{read_integer(str(day))}{suffix or '日'}"


def _date_ym(m: re.Match[str]) -> str:
    month = int(m.group(2))
    if not 1 <= month <= 12:
        return m.group(0)
    return f"{read_digits(m.group(1))}年{read_integer(str(month))}月"


def _time(m: re.Match[str]) -> str:
    hour, minute, second = int(m.group(1)), int(m.group(2)), m.group(3)
    text = read_integer(str(hour)) + "点"
    if second is None:
        if minute == 0:
            return text
        return text + ("零" if minute < 10 else "") + read_integer(str(minute)) + "分"
    sec = int(second)
    text += ("零" if minute < 10 else "") + read_integer(str(minute)) + "分"
    return text + ("零" if sec < 10 else "") + read_integer(str(sec)) + "秒"


def _phone_groups(*groups: str | None) -> str:
    return " ".join(read_digits(g, yao=True) for g in groups if g)


def _mobile(m: re.Match[str]) -> str:
    prefix = "加八六 " if m.group(1) else ""
    return prefix + _phone_groups(m.group(2), m.group(3), m.group(4))


def _phone_in_context(m: re.Match[str]) -> str:
    digits = [g for g in re.split(r"[- ]+", m.group(3).lstrip("+")) if g]
    plus = "加" if m.group(3).startswith("+") else ""
    return m.group(1) + m.group(2) + plus + _phone_groups(*digits)


def _currency_prefix(m: re.Match[str]) -> str:
    name = CURRENCY_PREFIX[m.group(1)]
    sign = "负" if m.group(2) else ""
    magnitude = m.group(4) or ""
    magnitude = MAGNITUDE_SUFFIX.get(magnitude, magnitude)
    return sign + _money_amount(m.group(3)) + magnitude + name


def _percent_range(m: re.Match[str]) -> str:
    return f"百分之{read_number(m.group(1))}到百分之{read_number(m.group(2))}"


def _percent(m: re.Match[str]) -> str:
    head = "千分之" if m.group(3) == "‰" else "百分之"
    return ("负" if m.group(1) else "") + head + read_number(m.group(2))


def _fraction(m: re.Match[str]) -> str:
    return f"{read_integer(m.group(2))}分之{read_integer(m.group(1))}"


def _after_letters(m: re.Match[str]) -> str:
    # Model numbers: short ones are cardinals (Win10 → 十), long ones digit strings (H264).
    number = m.group(1)
    if "." in number:
        return read_number(number)
    return read_integer(number) if len(number) <= 2 else read_digits(number)


def _units_pattern() -> str:
    names = sorted(UNITS, key=len, reverse=True)
    return "|".join(re.escape(n) for n in names)


def _email_or_url(m: re.Match[str]) -> str:
    out = []
    for part in re.split(r"([@./:_-])", re.sub(r"^https?://", "", m.group(0))):
        if part == "@":
            out.append("艾特")
        elif part == ".":
            out.append("点")
        elif part == "/":
            out.append("斜杠")
        elif part == "_":
            out.append("下划线")
        elif part == "-":
            out.append("杠")
        elif part == ":":
            continue
        else:
            out.append(re.sub(r"\d+", lambda d: read_digits(d.group(0)), part))
    return " " + "".join(out) + " "


_TLD = r"(?:com|cn|net|org|edu|gov|io|ai|co|info|top|xyz|me|tv|cc|uk|jp|de)"

RULES: list[Rule] = [
    # 1,234,567 → 1234567 (only well-formed 3-digit groups)
    (_re(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![,\d])"), lambda m: m.group(0).replace(",", "")),
    (_re(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"), _email_or_url),
    (
        _re(
            rf"(?:https?://)?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.{_TLD}(?![A-Za-z])(?:/[A-Za-z0-9._~%/=&-]*)?"
        ),
        _email_or_url,
    ),
    # dates: 2024-03-05, 2024/3/5, 2024.3.5 (same separator), 2024-03, year ranges, 2024年
    (_re(r"(?<![\d.])(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?![\d.])(日|号)?"), _date_ymd),
    (_re(r"(?<![\d.])(\d{4})[-/](\d{1,2})(?![\d/-])(?!\s*[%~])"), _date_ym),
    (
        _re(r"(?<![\d.])(\d{4})\s?[-~—至到]\s?(\d{4})(?=\s?年)"),
        lambda m: f"{read_digits(m.group(1))}到{read_digits(m.group(2))}",
    ),
    (_re(r"(?<![\d.])(\d{4})(?=\s?年)"), lambda m: read_digits(m.group(1))),
    # version-like dotted numbers 1.2.3 → 一点二点三
    (
        _re(r"(?<![\d.])\d+(?:\.\d+){2,}(?![\d.])"),
        lambda m: "点".join(read_integer(p) for p in m.group(0).split(".")),
    ),
    # times 14:30, 8:05:09; other a:b are ratios (3:2 → 三比二)
    (_re(r"(?<![\d.:])([01]?\d|2[0-4]):([0-5]\d)(?::([0-5]\d))?(?![\d:])"), _time),
    (
        _re(rf"(?<![\d.])({_NUM}):({_NUM})(?![\d:])"),
        lambda m: f"{read_number(m.group(1))}比{read_number(m.group(2))}",
    ),
    # phone numbers, digit by digit with 1 as 幺
    (_re(r"(?<![\d+])(\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)"), _mobile),
    (_re(r"(?<!\d)(0\d{2,3})-(\d{7,8})(?!\d)"), lambda m: _phone_groups(m.group(1), m.group(2))),
    (
        _re(r"(?<!\d)([48]00)-?(\d{3})-?(\d{4})(?!\d)"),
        lambda m: _phone_groups(m.group(1), m.group(2), m.group(3)),
    ),
    (
        _re(
            r"(电话|手机|热线|号码|拨打|致电|呼叫|传真|Tel|TEL|tel)([\s:：是为号码]{0,3})(\+?\d[\d -]{1,18}\d)"
        ),
        _phone_in_context,
    ),
    # money
    (
        _re(
            r"(US\$|HK\$|NT\$|[¥$€£₩₹])\s?(-)?(\d+(?:\.\d+)?)(?:\s?(万亿|亿|万|千|百|bn|[kKmMB])(?![A-Za-z]))?"
        ),
        _currency_prefix,
    ),
    (
        _re(rf"({_NUM})\s?({'|'.join(CURRENCY_SUFFIX)})(?![A-Za-z])"),
        lambda m: _money_amount(m.group(1)) + CURRENCY_SUFFIX[m.group(2)],
    ),
    # percentages (and ranges of them)
    (_re(rf"(?<![\d.])({_NUM})%?\s?[-~至到]\s?({_NUM})%"), _percent_range),
    (_re(rf"(?<![\d.])(-)?({_NUM})\s?([%‰])"), _percent),
    # English ordinals and No.
    (
        _re(r"(?<![\d.])(\d+)(?:st|nd|rd|th)(?![A-Za-z])"),
        lambda m: "第" + read_integer(m.group(1)),
    ),
    (_re(r"\b(?:No|NO)\.\s?(\d+)"), lambda m: "第" + read_integer(m.group(1)) + "号"),
    # units right after a number
    (
        _re(rf"(?<=\d)\s?({_units_pattern()})(?![A-Za-z0-9²³])"),
        lambda m: UNITS[m.group(1)],
    ),
    # arithmetic between numbers
    (_re(r"(?<=\d)\s?[xX×*]\s?(?=\d)"), lambda m: "乘"),
    (_re(r"(?<=\d)\s?\+\s?(?=\d)"), lambda m: "加"),
    (_re(r"(?<=\d)\s?÷\s?(?=\d)"), lambda m: "除以"),
    (_re(r"(?<=\d)\s?-\s?(?=[\d.]+\s?=)"), lambda m: "减"),
    (_re(r"(?<=\d)\s?>\s?(?=-?\d)"), lambda m: "大于"),
    (_re(r"(?<=\d)\s?<\s?(?=-?\d)"), lambda m: "小于"),
    (_re(r"\s?=\s?"), lambda m: "等于"),
    # fractions 3/4 → 四分之三
    (_re(r"(?<![\d/.])(\d+)/(\d+)(?![\d/.])"), _fraction),
    # ranges 3-5 / 3~5 → 三到五
    (_re(rf"(?<![\d.])({_NUM})\s?[-~—]\s?(?=\d)"), lambda m: read_number(m.group(1)) + "到"),
    # digits glued to Latin letters (MP3, H264, GPT-4)
    (_re(r"(?<=[A-Za-z])-?(\d+(?:\.\d+)?)"), _after_letters),
    # signed and plain numbers
    (_re(rf"(?<![\dA-Za-z])-({_NUM})"), lambda m: "负" + read_number(m.group(1))),
    (_re(r"\+(?=\d)"), lambda m: "正"),
    (_re(_NUM), lambda m: read_number(m.group(0))),
]
"""Ordered rewrite rules; apply each with ``pattern.sub(function, text)``."""
