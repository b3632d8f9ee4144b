"""The error of a feature file that cannot be used, shared by the loader and the stream reader."""

from __future__ import annotations

from core.errors import UserError


class DataError(UserError, ValueError):
    """A feature file that cannot be used; the message names the file and the field."""
