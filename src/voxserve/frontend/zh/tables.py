"""Word tables for Mandarin normalization: units, currencies, symbols, letters with readings.

Plain data, no logic. Units are case-sensitive ("m" is 米, "M" is not a unit) and
are only rewritten right after a number (see ``normalize``); anything not listed
here stays as Latin letters and is spelled letter by letter later. Data-size units
(GB, MB, ...) are deliberately kept as letters: Mandarin speakers say "五G B", and
the letters are spelled the same way.
"""

from __future__ import annotations

UNITS: dict[str, str] = {
    # length / area / volume
    "km": "公里",
    "m": "米",
    "cm": "厘米",
    "mm": "毫米",
    "nm": "纳米",
    "μm": "微米",
    "um": "微米",
    "mi": "英里",
    "ft": "英尺",
    "km²": "平方公里",
    "km2": "平方公里",
    "m²": "平方米",
    "m2": "平方米",
    "cm²": "平方厘米",
    "m³": "立方米",
    "m3": "立方米",
    "cm³": "立方厘米",
    "L": "升",
    "l": "升",
    "ml": "毫升",
    "mL": "毫升",
    # mass
    "kg": "千克",
    "g": "克",
    "mg": "毫克",
    "t": "吨",
    "lb": "磅",
    "lbs": "磅",
    # time
    "h": "小时",
    "hr": "小时",
    "min": "分钟",
    "s": "秒",
    "ms": "毫秒",
    # speed
    "km/h": "公里每小时",
    "m/s": "米每秒",
    "mph": "英里每小时",
    # temperature / angle
    "℃": "摄氏度",
    "°C": "摄氏度",
    "℉": "华氏度",
    "°F": "华氏度",
    "°": "度",
    # electricity / physics
    "Hz": "赫兹",
    "kHz": "千赫兹",
    "MHz": "兆赫兹",
    "GHz": "吉赫兹",
    "W": "瓦",
    "kW": "千瓦",
    "kWh": "千瓦时",
    "V": "伏",
    "mAh": "毫安时",
    "dB": "分贝",
    "Pa": "帕",
    "kPa": "千帕",
    "MPa": "兆帕",
    "cal": "卡",
    "kcal": "千卡",
    # data sizes: kept as letters on purpose (see module docstring)
    "KB": "KB",
    "MB": "MB",
    "GB": "GB",
    "TB": "TB",
    "px": "像素",
}

CURRENCY_PREFIX: dict[str, str] = {
    "¥": "元",
    "￥": "元",
    "$": "美元",
    "US$": "美元",
    "HK$": "港元",
    "NT$": "新台币",
    "€": "欧元",
    "£": "英镑",
    "₩": "韩元",
    "₹": "卢比",
}

CURRENCY_SUFFIX: dict[str, str] = {
    "RMB": "元",
    "CNY": "元",
    "USD": "美元",
    "EUR": "欧元",
    "GBP": "英镑",
    "JPY": "日元",
    "HKD": "港元",
}

MAGNITUDE_SUFFIX: dict[str, str] = {
    "k": "千",
    "K": "千",
    "m": "百万",
    "M": "百万",
    "bn": "十亿",
    "B": "十亿",
}
"""Latin magnitude letters after a currency amount ($3M → 三百万美元)."""

SYMBOL_WORDS: dict[str, str] = {
    "+": "加",
    "=": "等于",
    "×": "乘",
    "÷": "除以",
    "±": "正负",
    "≈": "约等于",
    "≠": "不等于",
    "≥": "大于等于",
    "≤": "小于等于",
    "#": "井号",
    "@": "艾特",
    "&": "和",
    "‰": "千分号",
    "%": "百分号",
    "№": "第",
}
"""Symbols read as words when they stand outside a number expression."""

GREEK: dict[str, str] = {
    "α": "阿尔法",
    "β": "贝塔",
    "γ": "伽马",
    "δ": "德尔塔",
    "Δ": "德尔塔",
    "ε": "艾普西龙",
    "θ": "西塔",
    "λ": "兰姆达",
    "μ": "缪",
    "π": "派",
    "σ": "西格玛",
    "Σ": "西格玛",
    "φ": "斐",
    "ω": "欧米伽",
    "Ω": "欧姆",
}

PUNCT_CANON: dict[str, str] = {
    ",": "，",
    "!": "！",
    "?": "？",
    ":": "：",
    ";": "；",
    "(": "（",
    ")": "）",
    "[": "（",
    "]": "）",
    "【": "（",
    "】": "）",
    "「": "“",
    "」": "”",
    "『": "‘",
    "』": "’",
    "〝": "“",
    "〞": "”",
    "＂": "“",
    "〈": "《",
    "〉": "》",
    "﹐": "，",
    "﹑": "、",
    "､": "、",
    "﹔": "；",
    "﹕": "：",
    "﹖": "？",
    "﹗": "！",
    "︰": "：",
    "｡": "。",
    "﹒": "。",
    "・": "·",
    "•": "·",
    "―": "—",
    "─": "—",
}
"""Punctuation variants to the canonical simplified-Chinese forms (applied after numbers)."""

PRE_MAP: dict[str, str] = {
    "\u3000": " ",
    "\u00a0": " ",
    "\t": " ",
    "￥": "¥",
    "〜": "~",
    "–": "-",
    "−": "-",
    "﹣": "-",
    "﹢": "+",
    "﹪": "%",
    "﹩": "$",
}
"""Characters rewritten before the number rules (besides full-width ASCII, handled by offset)."""
