"""Markdown for ``voxserve bench cloning`` results (see :mod:`voxserve.bench.cloning`)."""

from __future__ import annotations

from typing import Any


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def to_markdown(r: dict[str, Any]) -> str:
    """A report: summary against targets, confusion table, emotion directions, latency."""
    t, ok = r["targets"], r["pass"]
    mark = {True: "✅", False: "❌"}
    lines = [
        f"# Cloning benchmark: pack `{r['pack']}` on {r['device']}" + (" (quick)" if r["quick"] else ""),
        "",
        f"{len(r['voices'])} held-out voices: "
        + ", ".join(f"{v['name']} ({v['kind'] or '?'}, {v['lang'] or '?'})" for v in r["voices"]),
        "",
        "| metric | target | measured | pass |",
        "| --- | --- | --- | --- |",
        f"| mean cosine(reference, output) d-vector | ≥ {t['cosine']} | {_fmt(r['mean_cosine'])} "
        f"({r['outputs_embedded']} outputs embedded) | {mark[ok['cosine']]} |",
        f"| outputs closest to their own reference | 1.0 | {_fmt(r['closest_to_own_reference'])} "
        f"| {mark[ok['confusion']]} |",
        f"| voices whose outputs are, on average, closest to their own reference | 1.0 | "
        f"{_fmt(r['voices_closest_to_own_reference'])} | {mark[ok['voice_confusion']]} |",
        *(
            [
                "| the teachers' own held-out utterances closest to their reference (ceiling, "
                f"{c['utterances']} utterances) | — | {_fmt(c['closest_to_own_reference'])} | |"
            ]
            if (c := r.get("teacher_closest_to_own_reference"))
            else []
        ),
        f"| Mandarin CER (Whisper base) | ≤ {t['cer_zh']} | {_fmt(r['cer_zh'])} | {mark[ok['cer_zh']]} |",
        f"| English WER (Whisper base) | ≤ {t['wer_en']} | {_fmt(r['wer_en'])} | {mark[ok['wer_en']]} |",
        f"| emotion labels moving pitch, energy, tempo as intended | {len(r['emotion'])} | {r['emotions_ok']} "
        f"| {mark[ok['emotion']]} |",
        f"| latency, new voice (register + embed + synthesize) p50 | — | "
        f"{r['latency_ms']['new_voice_p50']:.0f} ms | |",
        f"| latency, registered voice (cached embedding) p50 | — | "
        f"{r['latency_ms']['registered_voice_p50']:.0f} ms | |",
        "",
        f"Latency text: {r['latency_ms']['text']}",
        "",
        "## Confusion (rows: outputs of a voice; columns: reference d-vectors; mean cosine)",
        "",
    ]
    names = r["confusion"]["cols_reference"]
    lines += ["| outputs \\ reference | " + " | ".join(names) + " |", "| --- " * (len(names) + 1) + "|"]
    for name, row in zip(r["confusion"]["rows_outputs_of"], r["confusion"]["mean_cosine"], strict=True):
        best = max(range(len(row)), key=lambda j: row[j] if row[j] == row[j] else -2)
        cells = [f"**{v:.3f}**" if j == best else f"{v:.3f}" for j, v in enumerate(row)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Emotion (ln ratio against neutral; want +1 up, -1 down, 0 any)",
        "",
        "| label | pitch | energy | tempo | ok |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, row in r["emotion"].items():
        cells = [
            f"{row[k]['log_ratio']:+.3f} (want {row[k]['want']:+d}) {mark[row[k]['ok']]}"
            for k in ("pitch", "energy", "tempo")
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {mark[row['ok']]} |")
    lines += ["", "## Outputs", "", "| voice | lang | cosine | error | text | heard |", "| --- " * 6 + "|"]
    for o in r["outputs"]:
        lines.append(
            f"| {o['voice']} | {o['lang']} | {_fmt(o['cosine'])} | {_fmt(o.get('error'))} | {o['text']} "
            f"| {o.get('heard', '—')} |"
        )
    return "\n".join(lines) + "\n"
