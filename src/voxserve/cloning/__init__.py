"""Voice cloning: reference audio in, a registered voice (a d-vector under an id) out.

- ``audio``: decode an upload (wav, flac, mp3, ogg), resample to 16 kHz, trim silence, normalise
  loudness, and refuse what cannot serve as a reference (typed 4xx errors);
- ``encoder``: ``SpeakerEncoder``, the GE2E d-vector model with its pretrained weights;
- ``registry``: ``VoiceRegistry`` over a ``VoiceStore`` (SQLite by default, Redis optionally); it
  is the engine's ``VoiceDirectory`` for ``voice_...`` ids.

Nothing is imported or loaded at package import.
"""
