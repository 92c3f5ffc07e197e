"""Errors a person can act on: each one says what went wrong and where."""

from __future__ import annotations


class CinerecError(Exception):
    """Base class for every error cinerec reports to a user as one clear line."""


class DataError(CinerecError):
    """Bad input data: names the file, the row (1-based, header excluded) and the field.

    Raised instead of silently dropping or half-writing data, so the user can fix the
    source and run again.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.row = row
        self.field = field
        self.reason = message
        where = []
        if file is not None:
            where.append(str(file))
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class IntegrityError(CinerecError):
    """A downloaded or mirrored file failed its checksum or structure check."""


class ModelError(CinerecError):
    """A model was used wrongly (not fitted, unknown name, incompatible bundle)."""
