"""Prosodic words and phrase breaks inside one clause (text between pauses).

Simple, documented rules approximating the Baker corpus labels:

- **prosodic words** (#1 between them) are built from lexical words: a clitic
  (的 了 着 过 们 吗 呢 吧 里 中 儿 ...) joins the word before it, and so does a measure
  word or unit after a spelled-out number (二零二四|年, 三十|分); a monosyllabic word
  joins the word after it when the pair has at most 3 syllables (很|好, 去|公园), except
  that a following adverb/preposition (``LEANS_RIGHT``: 很 都 在 把 ...) keeps itself for
  the word after *it* when that fits (这 | 很重要, 他 | 在银行), and a postposition
  (以后 之前 左右 ...) takes no monosyllable before it; a monosyllable left alone
  joins the word before it under the same limit (我爱|你, 买好酒|以后). Latin tokens
  are prosodic words of their own and never join;
- **minor phrase breaks** (#2) replace #1 before a clause-linking conjunction
  (但是 所以 因为 如果 ...) once 3 syllables precede it in the phrase, before 和/与/
  及/跟/同/或 once 4 do, and wherever the phrase would grow beyond
  ``PHRASE_MAX`` syllables (when at least ``PHRASE_MIN`` precede and 3 follow);
- the clause's last word gets the level of what ends the clause (punctuation #3,
  sentence end, space); that is the caller's job.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from voxserve.frontend.utterance import BREAK_PHRASE, BREAK_PROSODIC_WORD, BREAK_WORD
from voxserve.frontend.zh.charsets import word_set

CLITICS = word_set("的 地 得 了 着 过 们 吗 呢 吧 啊 呀 嘛 啦 哇 哦 么 儿 里 中 似的")
"""Words that lean on the word before them."""
STRONG_CONJUNCTIONS = word_set(
    "但是 但 可是 然而 而且 并且 所以 因此 因为 如果 虽然 尽管 即使 然后 于是 或者 以及 不过 否则 "
    "只要 只有 除非 无论 不管 既然 甚至 而 而是 要是 假如 因而 从而 何况 况且"
)
"""Clause-linking conjunctions: a #2 break before them."""
WEAK_CONJUNCTIONS = word_set("和 与 及 跟 同 或")
"""Phrase-linking conjunctions: a #2 break before them only after a longer phrase."""
LEANS_RIGHT = word_set(
    "很 太 最 更 都 也 就 还 又 才 不 没 别 在 把 被 给 对 从 向 往 跟 和 与 比 让 叫 将 要 会 能 再 已"
)
"""Monosyllabic adverbs, prepositions and auxiliaries that join the word after them."""
POSTPOSITIONS = word_set(
    "以后 之后 以前 之前 以来 以上 以下 以内 以外 之间 之中 之内 之外 左右 时候 的时候 一样 而已 为止"
)
"""Words after which a monosyllable belongs to the word before it (买好|酒|以后 → 买好酒|以后)."""
MEASURES = frozenset(
    "年月日号点分秒元角块毛个位次岁米天人件条张本只层楼度倍名家克斤吨升周届代辆台部架座间种样份双套批群"
)
"""Measure words and units that join a spelled-out number before them (二零二四|年 → 二零二四年)."""
NUMBER_WORD = re.compile(r"[零〇一二三四五六七八九十百千万亿两幺点]+")
PROSODIC_WORD_MAX = 3
"""A monosyllable joins a neighbour only if the result has at most this many syllables."""
PHRASE_MAX = 7
"""Syllables after which a minor phrase break (#2) is placed at the next prosodic word boundary."""
PHRASE_MIN = 3
"""Fewest syllables before a #2 break."""


def group_words(words: Sequence[str], sizes: Sequence[int], latin: Sequence[bool]) -> list[list[int]]:
    """Prosodic words of a clause as lists of word indices, in order."""
    n = len(words)
    groups: list[list[int]] = []
    group_sizes: list[int] = []
    for i, word in enumerate(words):
        if groups and not latin[i] and not latin[groups[-1][-1]]:
            last = groups[-1]
            after_number = word in MEASURES and NUMBER_WORD.fullmatch(words[i - 1]) is not None
            lone_mono = len(last) == 1 and group_sizes[-1] == 1 and words[last[0]] not in CLITICS
            # 这|很重要 rather than 这很|重要: a leaning monosyllable keeps itself for the next word.
            leans_on_next = (
                sizes[i] == 1
                and word in LEANS_RIGHT
                and i + 1 < n
                and not latin[i + 1]
                and words[i + 1] not in CLITICS
                and 1 + sizes[i + 1] <= PROSODIC_WORD_MAX
            )
            if (
                word in CLITICS
                or after_number
                or (
                    lone_mono
                    and not leans_on_next
                    and word not in POSTPOSITIONS
                    and 1 + sizes[i] <= PROSODIC_WORD_MAX
                )
            ):
                last.append(i)
                group_sizes[-1] += sizes[i]
                continue
        groups.append([i])
        group_sizes.append(sizes[i])
    # A monosyllable still alone leans on the prosodic word before it.
    merged: list[list[int]] = []
    merged_sizes: list[int] = []
    for group, size in zip(groups, group_sizes, strict=True):
        lone_mono = len(group) == 1 and size == 1 and not latin[group[0]]
        if lone_mono and merged and not latin[merged[-1][-1]] and merged_sizes[-1] + 1 <= PROSODIC_WORD_MAX:
            merged[-1].extend(group)
            merged_sizes[-1] += 1
            continue
        merged.append(list(group))
        merged_sizes.append(size)
    return merged


def clause_breaks(words: Sequence[str], sizes: Sequence[int], groups: Sequence[Sequence[int]]) -> list[int]:
    """Break level after each word of the clause: 0 inside a prosodic word, 1 or 2 between.

    The entry for the clause's last word is 0 here; the caller sets it.
    """
    levels = [BREAK_WORD] * len(words)
    group_sizes = [sum(sizes[i] for i in g) for g in groups]
    total = sum(group_sizes)
    run = 0
    consumed = 0
    for gi, group in enumerate(groups):
        size = group_sizes[gi]
        if gi > 0:
            first = words[group[0]]
            remaining = total - consumed
            level = BREAK_PROSODIC_WORD
            if (
                (first in STRONG_CONJUNCTIONS and run >= PHRASE_MIN)
                or (first in WEAK_CONJUNCTIONS and run >= PHRASE_MIN + 1 and remaining >= 3)
                or (run >= PHRASE_MIN and run + size > PHRASE_MAX and remaining >= 3)
            ):
                level = BREAK_PHRASE
            levels[groups[gi - 1][-1]] = level
            if level == BREAK_PHRASE:
                run = 0
        run += size
        consumed += size
    return levels
