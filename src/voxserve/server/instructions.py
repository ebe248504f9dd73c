"""Emotion from OpenAI's free-text ``instructions`` field.

``emotion_from_instructions("用开心的语气说")`` is ``"开心"``; ``"say it angrily"`` gives
``"生气"``; ``"in a sad voice"`` gives ``"悲伤"``. The first emotion mentioned wins. It
reads only emotion: other wishes in the text (speed, accent, persona) are ignored,
and so is negation in English ("not angry" still reads as angry); Chinese 不开心
reads as sad. A text that names no emotion gives None (the voice's default).
"""

from __future__ import annotations

import re

# Chinese words and the label each one means.
_ZH: tuple[tuple[str, str], ...] = (
    ("不开心", "悲伤"),
    ("不高兴", "悲伤"),
    ("普通", "普通"),
    ("平静", "普通"),
    ("平淡", "普通"),
    ("中性", "普通"),
    ("生气", "生气"),
    ("愤怒", "生气"),
    ("气愤", "生气"),
    ("恼火", "生气"),
    ("开心", "开心"),
    ("高兴", "开心"),
    ("快乐", "开心"),
    ("愉快", "开心"),
    ("欢快", "开心"),
    ("兴奋", "开心"),
    ("惊讶", "惊讶"),
    ("吃惊", "惊讶"),
    ("惊奇", "惊讶"),
    ("震惊", "惊讶"),
    ("悲伤", "悲伤"),
    ("难过", "悲伤"),
    ("伤心", "悲伤"),
    ("悲痛", "悲伤"),
    ("厌恶", "厌恶"),
    ("讨厌", "厌恶"),
    ("嫌弃", "厌恶"),
    ("恶心", "厌恶"),
    ("恐惧", "恐惧"),
    ("害怕", "恐惧"),
    ("恐慌", "恐惧"),
    ("惊恐", "恐惧"),
)

# English stems with their word forms (angry, angrily, anger...). Word boundaries keep
# "unhappy" from reading as happy; it is listed as sad instead.
_EN: tuple[tuple[str, str], ...] = (
    (r"unhapp(?:y|ily|iness)", "悲伤"),
    (r"neutral(?:ly)?|normal(?:ly)?|calm(?:ly)?|plain(?:ly)?|flat(?:ly)?", "普通"),
    (r"angr(?:y|ily|ier|iest)|anger(?:ed)?|mad|furious(?:ly)?|irritated|annoyed|rage", "生气"),
    (
        r"happ(?:y|ily|ier|iest|iness)|joy(?:ful|fully|ous|ously)?|cheerful(?:ly)?|glad(?:ly)?"
        r"|excited(?:ly)?|delighted",
        "开心",
    ),
    (r"surpris(?:e|ed|ing|ingly)|astonish(?:ed|ment)?|amazed|shocked", "惊讶"),
    (r"sad(?:ly|der|dest|ness)?|sorrow(?:ful|fully)?|grie(?:f|ving)|melanchol(?:y|ic)|gloomy", "悲伤"),
    (r"disgust(?:ed|ing|ingly)?|revolted|repulsed", "厌恶"),
    (r"fear(?:ful|fully)?|afraid|scared|frightened|terrified|anxious(?:ly)?|nervous(?:ly)?", "恐惧"),
)
_EN_RE = re.compile("|".join(rf"\b(?P<e{i}>{p})\b" for i, (p, _) in enumerate(_EN)), re.IGNORECASE)


def emotion_from_instructions(text: str | None) -> str | None:
    """The canonical label of the first emotion mentioned in ``text``, or None if none is."""
    if not text:
        return None
    best: tuple[int, str] | None = None
    for word, label in _ZH:
        at = text.find(word)
        # 不开心 starts one character before the 开心 inside it, so position alone picks it.
        if at >= 0 and (best is None or at < best[0]):
            best = (at, label)
    m = _EN_RE.search(text)
    if m is not None and (best is None or m.start() < best[0]):
        index = int(next(k for k, v in m.groupdict().items() if v is not None)[1:])
        best = (m.start(), _EN[index][1])
    return best[1] if best else None
