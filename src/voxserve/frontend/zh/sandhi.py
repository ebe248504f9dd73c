"""Mandarin tone sandhi and neutral tones on pinyin readings, in place.

All functions take one *clause* (the words between two pauses): ``words`` (texts)
and ``readings`` (one mutable list of toned pinyin per word, "" for a character
without reading); ``fixed[i]`` marks a word whose readings are kept as given (a
user lexicon entry or a spelled Latin token; it still counts as a neighbour).
Apply in this order:

1. ``apply_neutral``: particles (吗 呢 吧 的 了 着 们 ...) → 5; 地/得 as structural
   particles → de5 (得 after a pronoun → dei3 "must", 得了 → de2, 跑得快 → de5);
   aspect 过 after a verb → guo5 (吃过饭); reduplicated monosyllabic verbs (看看,
   试试) → second syllable 5;
2. ``apply_yi_bu``: 不 → bu2 before a 4th tone, bu5 in the middle of a
   three-character word (好不好, 对不起, 看不见); 一 → yi1 when counting (digit
   strings, 第一, 十一, 一月, 一号, decimals 一点五, word-final 统一), yi5 in A一A
   (看一看), else yi2 before a 4th/neutral tone and yi4 before a 1st/2nd/3rd;
3. ``apply_third``: 3-3 → 2-3 inside a word (你好 ni2 hao3); three 3rd tones
   follow the word's structure (展览|馆 → 2 2 3, 小|老虎 → 3 2 3); four split 2+2;
   digit strings (一九九八) and longer words go left to right; numbers with place
   units change only a digit before its unit (九百九十九 → jiu2 bai3 jiu3 shi2
   jiu3); then across word boundaries *inside a prosodic word* (很|好 → hen2
   hao3), left to right (我也很好 as one prosodic word → 2 2 2 3).

Only tone digits change; syllables are never added or removed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from voxserve.frontend.zh.charsets import DIGIT_CHARS, word_set

PARTICLES = frozenset("吗呢吧啊呀嘛啦哇么的了着们")
"""Single-character words that are always neutral (when not first in the clause)."""

PRONOUNS = word_set("我 你 您 他 她 它 我们 你们 他们 她们 它们 咱们 咱 大家 谁 自己")
"""Words after which a lone 得 means "must" (dei3) and 过 is a verb."""
_VERBS = "看听想试说走坐问尝找写读练玩聊动摸闻查学逛转歇猜瞧洗擦揉捏敲拍跳唱算比量数念讲谈"
REDUP_VERBS = frozenset(_VERBS)
"""Monosyllabic verbs whose reduplication (看看) has a neutral second syllable."""
ASPECT_GUO_VERBS = frozenset(_VERBS + "吃去来见到做用住买喝遇碰干当")
"""Verbs after which 过 is the aspect particle (吃过 → chi1 guo5)."""
_NUMERALS = DIGIT_CHARS | frozenset("十百千万亿两")
_YI1_NEXT = frozenset("月号楼")
_NUMBER_WORD = DIGIT_CHARS | frozenset("十百千万亿两幺点")
_UNITS = frozenset("十百千万亿")
_LOCATIVE = frozenset("上里下中面方")
_ADVERB_BEFORE_BU = frozenset(
    "并也都就还又再决绝毫从可倒却才而若如既虽岂何永万千实本很真太更最非谁我你他她它"
)
"""First characters of X不Y words where 不 is plain negation, not a complement (并不是)."""


def tone(reading: str) -> int:
    """Tone digit of a reading (0 for "")."""
    return int(reading[-1]) if reading else 0


def _set(reading: str, new_tone: int) -> str:
    return reading[:-1] + str(new_tone) if reading else reading


def apply_neutral(words: Sequence[str], readings: list[list[str]], fixed: Sequence[bool]) -> None:
    """Neutral-tone rules (step 1 in the module docstring)."""
    for i, word in enumerate(words):
        if fixed[i]:
            continue
        r = readings[i]
        prev = words[i - 1] if i > 0 else ""
        if len(word) == 1:
            if not prev:
                continue
            if word in PARTICLES:
                r[0] = _set(r[0], 5)
            elif word == "地" and len(prev) >= 2 and i + 1 < len(words) and words[i + 1][0] not in _LOCATIVE:
                r[0] = "de5"
            elif word == "得":
                if _next_is(words, i, "了"):
                    r[0] = "de2"  # 得了: obtained
                else:
                    r[0] = "dei3" if prev in PRONOUNS else "de5"
            elif word == "过" and prev not in PRONOUNS and prev[-1] in ASPECT_GUO_VERBS:
                r[0] = "guo5"
        else:
            if len(word) == 2 and word[0] == word[1] and word[0] in REDUP_VERBS:
                r[1] = _set(r[1], 5)
            for k in range(1, len(word)):
                if word[k] == "过" and word[k - 1] in ASPECT_GUO_VERBS and r[k] == "guo4":
                    r[k] = "guo5"  # 吃过(饭)
            if len(word) == 3 and word[1] == "得" and r[1] == "de2":
                r[1] = "de5"  # 跑得快


def _next_is(words: Sequence[str], i: int, text: str) -> bool:
    return i + 1 < len(words) and words[i + 1] == text


def _neighbours(words: Sequence[str], readings: list[list[str]], i: int, k: int) -> tuple[str, str, str, str]:
    """(previous char, next char, next reading, char after next) around ``words[i][k]`` in the clause."""
    word = words[i]
    if k > 0:
        prev = word[k - 1]
    elif i > 0:
        prev = words[i - 1][-1]
    else:
        prev = ""
    if k + 1 < len(word):
        nxt, nxt_reading = word[k + 1], readings[i][k + 1]
        after = word[k + 2] if k + 2 < len(word) else (words[i + 1][0] if i + 1 < len(words) else "")
    elif i + 1 < len(words):
        nxt, nxt_reading = words[i + 1][0], readings[i + 1][0]
        after = words[i + 1][1] if len(words[i + 1]) > 1 else (words[i + 2][0] if i + 2 < len(words) else "")
    else:
        nxt, nxt_reading, after = "", "", ""
    return prev, nxt, nxt_reading, after


def _yi_tone(words: Sequence[str], readings: list[list[str]], i: int, k: int) -> int:
    word = words[i]
    if len(word) == 3 and k == 1 and word[0] == word[2]:
        return 5  # 看一看
    prev, nxt, nxt_reading, after = _neighbours(words, readings, i, k)
    if prev == "第" or prev in _NUMERALS or nxt in DIGIT_CHARS:
        return 1  # ordinals, 十一, digit strings (一九九八)
    if nxt in _YI1_NEXT or (nxt == "日" and prev == "月") or (nxt == "点" and after in DIGIT_CHARS):
        return 1  # 一月, 一号, 三月一日, 一点五
    if len(word) > 1 and k == len(word) - 1:
        return 1  # 统一, 万一, 星期一: word-final
    if not nxt_reading:
        return 1
    return 2 if tone(nxt_reading) in (4, 5) else 4


def apply_yi_bu(words: Sequence[str], readings: list[list[str]], fixed: Sequence[bool]) -> None:
    """一/不 sandhi (step 2 in the module docstring)."""
    for i, word in enumerate(words):
        if fixed[i] or ("一" not in word and "不" not in word):
            continue
        r = readings[i]
        for k, char in enumerate(word):
            if char == "不" and tone(r[k]) in (2, 4):
                if len(word) == 3 and k == 1 and (word[0] == word[2] or word[0] not in _ADVERB_BEFORE_BU):
                    r[k] = "bu5"  # 好不好, 对不起, 看不见 (but 并不是 keeps the rule below)
                else:
                    nxt_reading = _neighbours(words, readings, i, k)[2]
                    r[k] = "bu2" if tone(nxt_reading) == 4 else "bu4"
            elif char == "一" and tone(r[k]) != 5 and r[k]:
                r[k] = "yi" + str(_yi_tone(words, readings, i, k))


def _pair(r: list[str], a: int, b: int) -> None:
    if tone(r[a]) == 3 and tone(r[b]) == 3:
        r[a] = _set(r[a], 2)


def _third_in_word(word: str, r: list[str], is_word: Callable[[str], bool]) -> None:
    n = len(r)
    if _NUMBER_WORD.issuperset(word) and not _UNITS.isdisjoint(word):
        for k in range(n - 1):
            if word[k + 1] in _UNITS:
                _pair(r, k, k + 1)  # 九百 → jiu2 bai3, but 百|九 stays: units group the digits
        return
    if n == 2:
        _pair(r, 0, 1)
    elif n == 3:
        if all(tone(x) == 3 for x in r):
            if is_word(word[:2]) or not is_word(word[1:]):
                r[0], r[1] = _set(r[0], 2), _set(r[1], 2)  # (2+1) 展览馆
            else:
                r[1] = _set(r[1], 2)  # (1+2) 小老虎
        else:
            _pair(r, 0, 1)
            _pair(r, 1, 2)
    elif n == 4 and not _NUMBER_WORD.issuperset(word):
        _pair(r, 0, 1)  # idioms and compounds: 2+2 (岂有|此理)
        _pair(r, 2, 3)
    else:
        for k in range(n - 1):
            _pair(r, k, k + 1)


def apply_third(
    words: Sequence[str],
    readings: list[list[str]],
    fixed: Sequence[bool],
    groups: Sequence[Sequence[int]],
    is_word: Callable[[str], bool],
) -> None:
    """Third-tone sandhi (step 3): inside words, then across words of each prosodic word in ``groups``."""
    for i, word in enumerate(words):
        if not fixed[i] and len(word) > 1:
            _third_in_word(word, readings[i], is_word)
    for group in groups:
        for a, b in itertools.pairwise(group):
            if fixed[a]:
                continue
            last = _last_voiced(readings[a])
            if last >= 0 and readings[b] and tone(readings[b][0]) == 3 and tone(readings[a][last]) == 3:
                readings[a][last] = _set(readings[a][last], 2)


def _last_voiced(r: list[str]) -> int:
    for k in range(len(r) - 1, -1, -1):
        if r[k]:
            return k
    return -1
