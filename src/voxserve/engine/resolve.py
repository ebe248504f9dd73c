"""A request's ``voice`` name → the ``Speaker`` that renders it (see ``speakers.py`` for the names).

Who calls what: ``TTS`` and the serving ``Engine`` call :func:`resolve_voice` once per
request, with the packs they have loaded and the voice directories they were given. It
does not load models; a ``load`` callback (TTS's) may load a pack by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from voxserve.engine.speakers import Speaker, VoiceDirectory
from voxserve.errors import NotFound
from voxserve.packs.pack import Pack


def resolve_voice(
    name: str | None,
    default: str,
    packs: Mapping[str, Pack],
    directories: Sequence[VoiceDirectory] = (),
    load: Callable[[str], Pack] | None = None,
) -> Speaker:
    """The speaker ``name`` means; NotFound (HTTP 404) naming what exists when nothing matches.

    In order: None → ``default``; ``<pack>:<speaker>`` → that row of the pack's speaker
    table (a ``table`` pack's, or an ``embedding`` pack's table of vectors); a pack name →
    the pack's default speaker; a speaker name found in exactly one
    loaded pack → that speaker; a name a ``directory`` knows → its speaker (its pack must be
    loaded, or loadable); finally ``load(name)`` when given (a pack not loaded yet).
    """
    if name is None:
        name = default
    if not isinstance(name, str) or not name:
        raise NotFound(f"invalid voice {name!r}", param="voice")

    def pack(pack_name: str) -> Pack:
        if pack_name in packs:
            return packs[pack_name]
        if load is not None:
            return load(pack_name)
        raise NotFound(f"unknown voice {pack_name!r}; served: {', '.join(packs)}", param="voice")

    if ":" in name:
        pack_name, speaker = name.split(":", 1)
        p = pack(pack_name)
        if not _named_speakers(p):
            raise NotFound(f"voice {pack_name!r} has no speaker list (asked for {name!r})", param="voice")
        return Speaker(p.name, row=p.speaker_row(speaker), voice_id=name)
    if name in packs:
        return _default(packs[name], name)
    owners = [p for p in packs.values() if name in p.config.speakers and _named_speakers(p)]
    if len(owners) == 1:
        return Speaker(owners[0].name, row=owners[0].speaker_row(name), voice_id=f"{owners[0].name}:{name}")
    if len(owners) > 1:
        which = ", ".join(f"{p.name}:{name}" for p in owners)
        raise NotFound(f"speaker {name!r} is in several voices; say which: {which}", param="voice")
    for directory in directories:
        found = directory.lookup(name)
        if found is not None:
            pack(found.pack)  # its pack must be served
            return found
    if load is not None:
        return _default(load(name), name)
    raise NotFound(
        f"unknown voice {name!r}; served: {', '.join(packs)} (or <voice>:<speaker> for their speakers)",
        param="voice",
    )


def _named_speakers(pack: Pack) -> bool:
    """Whether ``pack``'s speakers can be picked by name: a ``table`` pack, or an ``embedding`` pack
    (the clone voice) that ships its speakers' vectors (see ``conditioning.speaker_vectors``)."""
    from voxserve.engine.conditioning import has_speaker_table

    return pack.config.speaker_input == "table" or has_speaker_table(pack)


def _default(pack: Pack, name: str) -> Speaker:
    row = pack.speaker_row() if _named_speakers(pack) else None
    return Speaker(pack.name, row=row, voice_id=name)
