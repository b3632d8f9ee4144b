"""What kind of media a path holds, and a readable reason when FFmpeg refuses to open it.

Kinds are decided by extension first (cheap, and what users expect of a folder listing); the
decoders then check the content, so a text file named ``.mp4`` still fails with a clear message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from core.features.errors import CORRUPT, EMPTY, NOT_MEDIA, ClipError

Kind = Literal["video", "audio", "image"]

VIDEO_EXTS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".flv"}
    | {".wmv", ".3gp", ".ogv"}
)
AUDIO_EXTS = frozenset(
    (".wav", ".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".wma")
)
IMAGE_EXTS = frozenset((".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"))
MEDIA_EXTS = VIDEO_EXTS | AUDIO_EXTS | IMAGE_EXTS

# Leading bytes of the containers we expect; a file that starts like one of these but does not
# open is most likely truncated or damaged, anything else is probably not media at all.
_MAGIC: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),  # MP4 / MOV / M4A
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"RIFF"),  # WAV / AVI / WebP
    (0, b"OggS"),
    (0, b"fLaC"),
    (0, b"ID3"),  # MP3 with tags
    (0, b"\xff\xfb"),  # MP3 frame sync
    (0, b"\xff\xf3"),
    (0, b"\xff\xf1"),  # ADTS AAC
    (0, b"\x00\x00\x01\xba"),  # MPEG-PS
    (0, b"\x47"),  # MPEG-TS sync byte
    (0, b"FORM"),  # AIFF
    (0, b"\x89PNG"),
    (0, b"\xff\xd8\xff"),  # JPEG
)


def kind_of(path: str | Path) -> Kind | None:
    """The media kind suggested by the file name, or None for other files."""
    ext = Path(path).suffix.lower()
    if ext in VIDEO_EXTS:
        return "video"
    if ext in AUDIO_EXTS:
        return "audio"
    if ext in IMAGE_EXTS:
        return "image"
    return None


def check_nonempty(path: str | Path) -> int:
    """File size in bytes; ClipError for a missing or zero-byte file."""
    try:
        size = Path(path).stat().st_size
    except OSError as e:
        raise ClipError(path, f"cannot read ({e.strerror or e})") from None
    if size == 0:
        raise ClipError(path, "empty file (0 bytes)", EMPTY)
    return size


def open_failure(path: str | Path, error: Exception) -> ClipError:
    """Turn FFmpeg's 'Invalid data found' into a message that says what the file probably is."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        return ClipError(path, f"cannot read ({e.strerror or e})")
    if not head:
        return ClipError(path, "empty file (0 bytes)", EMPTY)
    if any(head[at : at + len(magic)] == magic for at, magic in _MAGIC):
        return ClipError(
            path,
            f"looks like media but cannot be opened: truncated or corrupt ({_short(error)})",
            CORRUPT,
        )
    if _looks_like_text(head):  # said, never quoted: the text may be anything (a key, a password)
        return ClipError(path, "not a media file: it holds text", NOT_MEDIA)
    return ClipError(path, f"not a media file FFmpeg can read ({_short(error)})", NOT_MEDIA)


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    text = head.decode("utf-8", "replace")  # the 512-byte cut may split a character
    odd = sum(not (c.isprintable() or c in "\r\n\t") for c in text)
    return odd <= len(text) // 50


def _short(error: Exception) -> str:
    """FFmpeg errors carry errno and filename; keep the human part."""
    msg = getattr(error, "strerror", None) or str(error)
    return str(msg).strip()
