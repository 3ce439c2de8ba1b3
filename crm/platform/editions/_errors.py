"""The one error an edition file can raise."""

from __future__ import annotations

# What ``field`` says when the problem is the file as a whole (unreadable, not TOML) or
# the folder of editions.
FILE_FIELD = "(file)"
DIRECTORY_FIELD = "(directory)"


class EditionError(Exception):
    """A problem in an edition file.

    ``field`` is a dotted, indexed path into the file (``defaults.pipelines[0].stages[2].kind``),
    ``(file)`` for the file as a whole, ``(directory)`` for the editions folder.
    """

    def __init__(self, file: str, field: str, reason: str) -> None:
        # Passing all three to Exception keeps the error picklable (actors, multiprocessing).
        super().__init__(file, field, reason)
        self.file = file
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.reason}"
