"""The web UI's "clone a voice" part: a reference clip (uploaded or recorded) and a name → a new voice.

The page sees one plain value, a :class:`Cloning` (register and list callables); the
server's is :func:`registry_cloning`, which calls the same ``VoiceRegistry.register`` as
``POST /v1/audio/voices``, in-process (no HTTP, no API key, no HTTP metrics): the same
validation, limits, speaker encoder and store. A registered voice is added to the page's
voice menu and selected, so the next synthesis speaks with it. This module does not
synthesize, and it imports Gradio only inside the functions that build components.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voxserve.errors import VoxserveError

if TYPE_CHECKING:
    from voxserve.cloning.registry import VoiceRegistry

Choice = tuple[str, str]
"""A voice menu entry: (label shown, voice id passed to synthesis)."""


@dataclass(frozen=True)
class Cloning:
    """What the page needs to register voices; both callables are blocking (the page runs them in threads)."""

    register: Callable[[str, bytes], Choice]
    """``register(name, clip bytes)`` → the new voice's menu entry; VoxserveError for input the user can fix."""
    voices: Callable[[], list[Choice]]
    """The registered voices' menu entries, oldest first."""
    max_file_bytes: int
    """Largest clip the page accepts (bytes); the browser is refused larger uploads."""


def _label(name: str, voice_id: str) -> str:
    return f"{name} ({voice_id})"


def registry_cloning(registry: VoiceRegistry) -> Cloning:
    """``Cloning`` over the server's voice registry (the one its HTTP routes and engine share)."""

    def register(name: str, data: bytes) -> Choice:
        record = registry.register(name, [data])
        return _label(record.name, record.id), record.id

    def voices() -> list[Choice]:
        return [(_label(r.name, r.id), r.id) for r in registry.list()]

    return Cloning(register, voices, registry.limits.max_file_bytes)


UPLOAD_OVERHEAD = 64 * 1024
"""Bytes of multipart framing allowed on top of one clip (boundaries, headers)."""


def admit_uploads(app: Any, path: str, cloning: Cloning) -> None:
    """Let the server's ``RequestGuard`` pass the page's clip uploads (multipart, up to one clip).

    The guard refuses non-JSON bodies and bodies past the JSON limit everywhere else; Gradio
    uploads files to ``<path>/gradio_api/upload`` (recordings too, as WAV). See guard.py.
    """
    upload = f"{path.rstrip('/')}/gradio_api/upload"
    for attr, value in (
        ("upload_limits", cloning.max_file_bytes + UPLOAD_OVERHEAD),
        ("upload_types", ("multipart/form-data",)),
    ):
        if getattr(app.state, attr, None) is None:
            setattr(app.state, attr, {})
        getattr(app.state, attr)[upload] = value


def clone_section(gr: Any, blocks: Any, voice: Any, packs: Sequence[str], cloning: Cloning) -> None:
    """Build the part inside ``blocks`` (while it is open) and wire it to the ``voice`` dropdown.

    ``packs`` are the dropdown's own (non-registered) voice names, kept first in the menu;
    registered voices join them when a page loads and when one is registered. The
    microphone records in the browser (Gradio uploads the recording as WAV).
    """
    fixed: list[Choice] = [(v, v) for v in packs]

    async def choices() -> list[Choice]:
        return fixed + await asyncio.to_thread(cloning.voices)

    async def register(path: str | None, name: str | None) -> tuple[Any, Any]:
        if not path:
            raise gr.Error("请先上传或录制参考音频 (upload or record a reference clip first)")
        data = await asyncio.to_thread(Path(path).read_bytes)
        try:
            label, voice_id = await asyncio.to_thread(cloning.register, name or "", data)
            menu = await choices()
        except VoxserveError as e:
            raise gr.Error(str(e)) from e
        if (label, voice_id) not in menu:  # a store that lists lazily (another process's Redis)
            menu.append((label, voice_id))
        return label, gr.update(choices=menu, value=voice_id)

    gr.Markdown("### 克隆声音 (clone a voice)")
    with gr.Row():
        with gr.Column(scale=3):
            clip = gr.Audio(
                sources=["upload", "microphone"],
                type="filepath",
                format=None,  # the file as sent: the registry decodes wav, flac, mp3 and ogg itself
                buttons=["download"],  # no "share" (it targets Hugging Face Spaces)
                label="参考音频：一个人说 3-30 秒 (reference: 3-30 s of one speaker)",
                elem_id="vx-clone-audio",
            )
        with gr.Column(scale=2):
            name = gr.Textbox(label="名字 (name)", max_lines=1, elem_id="vx-clone-name")
            button = gr.Button("注册声音 (register voice)", elem_id="vx-clone-go")
            status = gr.Textbox(label="新声音 (new voice)", interactive=False, elem_id="vx-clone-status")
    button.click(register, [clip, name], [status, voice], api_name="register_voice")

    async def refresh() -> Any:  # voices registered elsewhere (HTTP, CLI, another page) before this load
        try:
            return gr.update(choices=await choices())
        except VoxserveError:  # an unreachable store: keep the menu as it is
            return gr.update()

    blocks.load(refresh, None, voice, api_name=False, show_progress="hidden")
