"""The one error type of feature extraction: a clip that cannot be (fully) used, naming the file."""

from __future__ import annotations

from pathlib import Path

from core.errors import UserError

# Short codes used to group skipped files in the end-of-run summary.
EMPTY = "empty file"
NOT_MEDIA = "not a media file"
CORRUPT = "truncated or corrupt"
CODEC = "unsupported codec"
NO_STREAM = "no usable stream"
NO_AUDIO = "no audio"
NO_VISUAL = "no picture"
TOO_SHORT = "too short"
UNREADABLE = "unreadable"
NOT_FINITE = "non-finite features"


class ClipError(UserError):
    """A file that cannot be decoded or encoded; ``str(e)`` is ``"<path>: <reason>"``.

    ``kind`` is one of the short codes above, so that a batch can summarise what it skipped.
    """

    def __init__(self, path: str | Path, reason: str, kind: str = UNREADABLE) -> None:
        self.path = str(path)
        self.reason = reason
        self.kind = kind
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # keep path/reason/kind when sent back from a decoding process
        return (type(self), (self.path, self.reason, self.kind))
