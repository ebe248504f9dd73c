"""Numbers as American English words: cardinals, ordinals, years, decimals, digits, money.

Words are separated by spaces (no hyphens, no "and"): "one hundred twenty three".
Used by ``english_text``; knows nothing about where a number stands in a sentence.
"""

from __future__ import annotations

_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}  # fmt: skip
_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", "", ""),
}


def _below_thousand(n: int) -> list[str]:
    words: list[str] = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
        if n == 0:
            return words
    if n < 20:
        words.append(_ONES[n])
    else:
        words.append(_TENS[n // 10])
        if n % 10:
            words.append(_ONES[n % 10])
    return words


def cardinal(n: int) -> str:
    """0 ≤ n < 10**15 → words ("1234" → "one thousand two hundred thirty four"); negatives get "minus"."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n < 1000:
        return " ".join(_below_thousand(n))
    words: list[str] = []
    for value, name in _SCALES:
        if n >= value:
            words += [cardinal(n // value), name]
            n %= value
    if n:
        words += _below_thousand(n)
    return " ".join(words)


def ordinal(n: int) -> str:
    """n → ordinal words ("22" → "twenty second")."""
    head, _, last = cardinal(n).rpartition(" ")
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head} {last}" if head else last


def year(n: int) -> str:
    """A year read in pairs ("1984" → "nineteen eighty four", "1905" → "nineteen oh five").

    2000-2009 and numbers outside 1000-9999 read as cardinals ("two thousand five").
    """
    if not 1000 <= n <= 9999 or 2000 <= n <= 2009:
        return cardinal(n)
    high, low = divmod(n, 100)
    if low == 0:
        return cardinal(n) if high % 10 == 0 else f"{cardinal(high)} hundred"
    if low < 10:
        return f"{cardinal(high)} oh {cardinal(low)}"
    return f"{cardinal(high)} {cardinal(low)}"


def digits(text: str) -> str:
    """Digit by digit ("007" → "zero zero seven"); non-digits are skipped."""
    return " ".join(_ONES[int(c)] for c in text if c.isdigit())


def decimal(whole: str, fraction: str) -> str:
    """Whole and fraction digits as words: ("3", "14") → "three point one four"; ("", "5") → "point five"."""
    head = cardinal(int(whole)) + " " if whole else ""
    return f"{head}point {digits(fraction)}" if fraction else head.strip()


def money(symbol: str, amount: str, scale: str | None = None) -> str:
    """Money as words: ("$", "2.50") → "two dollars fifty cents"; ("$", "2.5", "million") → "two point five million dollars"."""
    one, many, sub_one, sub_many = _CURRENCIES[symbol]
    whole, _, fraction = amount.partition(".")
    if scale:
        return f"{decimal(whole, fraction.rstrip('0'))} {scale} {many}"
    units = int(whole or "0")
    words = f"{cardinal(units)} {one if units == 1 else many}"
    cents = int((fraction + "00")[:2]) if fraction else 0
    if cents and sub_one:
        words += f" {cardinal(cents)} {sub_one if cents == 1 else sub_many}"
    elif fraction.strip("0"):
        words = f"{decimal(whole, fraction)} {many}"
    return words
