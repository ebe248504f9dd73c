"""voxserve: fast expressive text-to-speech.

``voxserve.TTS().synthesize("你好，世界。")`` returns an :class:`Audio`. Nothing
loads at import time: models load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["TTS", "Audio", "__version__"]

if TYPE_CHECKING:
    from voxserve.engine.audio import Audio
    from voxserve.engine.tts import TTS


def __getattr__(name: str) -> Any:
    # Lazy so that `import voxserve` stays cheap (no torch import) for the CLI's --help.
    if name == "TTS":
        from voxserve.engine.tts import TTS

        return TTS
    if name == "Audio":
        from voxserve.engine.audio import Audio

        return Audio
    raise AttributeError(name)
