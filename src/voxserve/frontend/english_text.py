"""English text normalization: numbers, abbreviations and symbols → words the G2P can read.

``normalize_english(text)`` rewrites, in this order:

1. abbreviations with a period (Mr. Dr. St. vs. etc. e.g. i.e. Jan. ..., "No." before
   a number) → words; dotted initialisms (U.S.A., a.m.) → capitals ("USA", "AM"),
   which the G2P spells;
2. numbers (``english_numbers``): times (10:30, 9:05 pm), ISO and US dates,
   phone-like groups (555-1234, digit by digit), money ($ £ € ¥, cents,
   "$5 million"), percentages, units after a number (kg, km, mph, GB ...), ranges
   (10-20 → ten to twenty), ordinals (1st, 22nd), decades (1990s, '80s),
   fractions (3/4), negatives, years (1984, 2024; not 2000-2009), decimals,
   thousands separators, and digits glued to letters (MP3 → MP three);
3. symbols: & + = @ → words; a dot inside a name (google.com) → "dot";
4. punctuation: quotes dropped, brackets → ( ), dashes → comma, "..." → "…";
   the kept marks , . ! ? ; : ( ) … attach to the word before them; any other
   character becomes a space;
5. whitespace collapses to single spaces.

Output is ASCII letters, apostrophes inside words, spaces and the kept marks; the
function is idempotent. Numbers are American English ("one hundred twenty
three", no "and"). The mixed frontend gives this function only the English runs
of a sentence; it does not look for CJK text.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from voxserve.frontend.english_numbers import cardinal, decimal, digits, money, ordinal, year

_ABBREVIATIONS = {
    "Mr": "Mister", "Mrs": "Missus", "Ms": "Miz", "Dr": "Doctor", "Prof": "Professor", "Sr": "Senior",
    "Jr": "Junior", "Mt": "Mount", "vs": "versus", "etc": "et cetera", "Inc": "Incorporated",
    "Ltd": "Limited", "Corp": "Corporation", "Co": "Company", "Dept": "Department", "approx": "approximately",
    "Jan": "January", "Feb": "February", "Mar": "March", "Apr": "April", "Aug": "August",
    "Sep": "September", "Sept": "September", "Oct": "October", "Nov": "November", "Dec": "December",
}  # fmt: skip
_UNITS = {
    "kg": "kilograms", "km": "kilometers", "cm": "centimeters", "mm": "millimeters", "mg": "milligrams",
    "ml": "milliliters", "lb": "pounds", "lbs": "pounds", "oz": "ounces", "ft": "feet", "mi": "miles",
    "mph": "miles per hour", "GB": "gigabytes", "MB": "megabytes", "KB": "kilobytes", "TB": "terabytes",
    "Hz": "hertz", "kHz": "kilohertz", "MHz": "megahertz", "GHz": "gigahertz", "ms": "milliseconds",
}  # fmt: skip
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
)  # fmt: skip
_HALVES = {2: ("half", "halves"), 4: ("quarter", "quarters")}
_SYMBOLS = {"&": " and ", "+": " plus ", "=": " equals ", "@": " at "}

Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _abbreviation(m: re.Match[str]) -> str:
    word = m.group(1)
    if word == "St":
        return "Saint " if m.group(2)[:1].isupper() else "Street "
    return _ABBREVIATIONS[word] + " "


def _time(m: re.Match[str]) -> str:
    hour, minute, half = int(m.group(1)), int(m.group(2)), m.group(3)
    if minute == 0:
        words = cardinal(hour) if half else f"{cardinal(hour)} o'clock"
    elif minute < 10:
        words = f"{cardinal(hour)} oh {cardinal(minute)}"
    else:
        words = f"{cardinal(hour)} {cardinal(minute)}"
    return f"{words} {half.upper()}M" if half else words


def _date(year_text: str, month: int, day: int) -> str:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return " ".join(digits(part) for part in (year_text, str(month), str(day)))
    return f"{_MONTHS[month - 1]} {ordinal(day)}, {year(int(year_text))}"


def _fraction(m: re.Match[str]) -> str:
    top, bottom = int(m.group(1)), int(m.group(2))
    if bottom in _HALVES:
        return f"{cardinal(top)} {_HALVES[bottom][top != 1]}"
    if 2 < bottom <= 20:
        return f"{cardinal(top)} {ordinal(bottom)}{'s' if top != 1 else ''}"
    return f"{cardinal(top)} over {cardinal(bottom)}"


def _decade(m: re.Match[str]) -> str:
    text = m.group(1)
    words = year(int(text)) if len(text) == 4 else cardinal(int(text))
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _plain(text: str) -> str:
    """A plain number: decimals, thousands separators, leading zeros (digit by digit), years."""
    bare = text.replace(",", "")
    if "." in bare:
        whole, fraction = bare.split(".", 1)
        return decimal(whole, fraction)
    if len(bare) > 1 and bare.startswith("0"):
        return digits(bare)
    value = int(bare)
    if "," not in text and len(bare) == 4 and (1100 <= value <= 1999 or 2010 <= value <= 2099):
        return year(value)
    return cardinal(value) if value < 10**15 else digits(bare)


_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_UNIT_NAMES = "|".join(sorted(_UNITS, key=len, reverse=True))
_WORD_RULES: tuple[Rule, ...] = (
    (
        re.compile(
            r"(?<![A-Za-z])(Mr|Mrs|Ms|Dr|Prof|Sr|Jr|Mt|vs|etc|Inc|Ltd|Corp|Co|Dept|approx|Jan|Feb|Mar|Apr|Aug"
            r"|Sept?|Oct|Nov|Dec|St)\.\s*(?=(\S?))"
        ),
        _abbreviation,
    ),
    (re.compile(r"(?<![A-Za-z])e\.g\.\s*"), lambda m: "for example, "),
    (re.compile(r"(?<![A-Za-z])i\.e\.\s*"), lambda m: "that is, "),
    (re.compile(r"(?<![A-Za-z])No\.\s*(?=\d)"), lambda m: "number "),
    (
        re.compile(r"(?<![A-Za-z])[A-Za-z](?:\.[A-Za-z])+\.?(?![A-Za-z])"),
        lambda m: m[0].replace(".", "").upper() + " ",
    ),
)
_NUMBER_RULES: tuple[Rule, ...] = (
    (re.compile(r"#(?=\d)"), lambda m: "number "),
    (re.compile(r"\b(\d{1,2}):(\d{2})(?:\s*([apAP])\.?[mM]\b\.?)?"), _time),
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), lambda m: _date(m[1], int(m[2]), int(m[3]))),
    (re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b"), lambda m: _date(m[3], int(m[1]), int(m[2]))),
    (re.compile(r"\b\d{3}-\d{3,4}(?:-\d{4})?\b"), lambda m: ", ".join(digits(g) for g in m[0].split("-"))),
    (
        re.compile(rf"([$£€¥])\s?({_NUM})(?:\s?(thousand|million|billion|trillion)\b)?"),
        lambda m: money(m[1], m[2].replace(",", ""), m[3]),
    ),
    (re.compile(rf"({_NUM})\s?%"), lambda m: f"{_plain(m[1])} percent"),
    (re.compile(rf"\b({_NUM})\s?({_UNIT_NAMES})\b"), lambda m: f"{_plain(m[1])} {_UNITS[m[2]]}"),
    (re.compile(r"\b(\d+)\s?-\s?(\d+)\b"), lambda m: f"{_plain(m[1])} to {_plain(m[2])}"),
    (re.compile(r"\b(\d+)(?:st|nd|rd|th)\b"), lambda m: ordinal(int(m[1]))),
    (re.compile(r"\b(\d{4}|\d0)'?s\b"), _decade),
    (re.compile(r"'(\d0)s\b"), _decade),
    (re.compile(r"\b(\d+)/(\d+)\b"), _fraction),
    (re.compile(r"(?:(?<=\s)|^)-(?=\d)"), lambda m: "minus "),
    (re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])"), lambda m: " "),
    (re.compile(_NUM), lambda m: _plain(m[0])),
    (re.compile(r"\d"), lambda m: digits(m[0])),
)
_DIGIT = re.compile(r"\d")
_SYMBOL = re.compile(r"[&+=@]")
_NAME_DOT = re.compile(r"(?<=[A-Za-z])\.(?=[A-Za-z])")
_ELLIPSIS = re.compile(r"\.{2,}|…+")
_DASH = re.compile(r"\s+[-–—]+\s+|-{2,}|[–—]+")
_APOSTROPHE = re.compile(r"(?<=[A-Za-z])[’'](?=[A-Za-z])|(?<=[A-Za-z]s)[’'](?![A-Za-z])")
_MARKS = str.maketrans(
    {"[": "(", "]": ")", "{": " ", "}": " ", "。": ".", "、": ",", "【": "(", "】": ")", "！": "!", "，": ",",
     "：": ":", "；": ";", "？": "?", "（": "(", "）": ")"}
)  # fmt: skip
_DROP = re.compile(r"[^A-Za-z\x00,.!?;:()… ]+")
_BEFORE_MARK = re.compile(r" +(?=[,.!?;:)…])")
_AFTER_MARK = re.compile(r"(?<=[,.!?;:)…])(?=[A-Za-z(])")
_OPEN_SPACE = re.compile(r"\( +")
_OPEN = re.compile(r"(?<=[A-Za-z,.!?;:)…])\(")
_SPACES = re.compile(r"\s+")
_WORD = r"[A-Za-z]+(?:'[A-Za-z]+)*(?:(?<=s)')?"
_CLEAN = re.compile(rf"{_WORD}(?:[,.!?;:…)]* \(?{_WORD})*[,.!?;:…)]*")


def _padded(rewrite: Callable[[re.Match[str]], str]) -> Callable[[re.Match[str]], str]:
    # Spaces around the words keep them apart from glued letters ("$1A" → "one dollar A").
    return lambda m: f" {rewrite(m)} "


def normalize_english(text: str) -> str:
    """Normalize an English run for reading (see the module docstring for the rules)."""
    if _CLEAN.fullmatch(text) and ".." not in text and not any(p.search(text) for p, _ in _WORD_RULES):
        return text
    text = text.translate(_MARKS)
    for pattern, rewrite in _WORD_RULES:
        text = pattern.sub(rewrite, text)
    if _DIGIT.search(text):
        for pattern, rewrite in _NUMBER_RULES:
            text = pattern.sub(_padded(rewrite), text)
    text = _SYMBOL.sub(lambda m: _SYMBOLS[m[0]], text)
    text = _NAME_DOT.sub(" dot ", text)
    text = _ELLIPSIS.sub("…", text)
    text = _DASH.sub(", ", text)
    text = _APOSTROPHE.sub("\x00", text)
    text = _DROP.sub(" ", text).replace("\x00", "'")
    text = _SPACES.sub(" ", text)
    text = _ELLIPSIS.sub("…", _BEFORE_MARK.sub("", text))
    text = _AFTER_MARK.sub(" ", text)
    text = _OPEN.sub(" (", _OPEN_SPACE.sub("(", text))
    return text.strip()
