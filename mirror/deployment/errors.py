"""The one-line failures of reading, recognising and rewriting a deployment file.

Each names the file (and the line where there is one), so that a command working
through several files can print it and go on with the next.
"""

from __future__ import annotations

from mirror.errors import MirrorError


class DeploymentFileError(MirrorError):
    """A deployment file could not be processed; `str()` is the whole message."""

    def __init__(
        self, file: str, message: str, line: int | None = None, column: int | None = None
    ) -> None:
        where = ":".join(str(part) for part in (file, line, column) if part is not None)
        super().__init__(f"{where}: {message}")
        self.file = file
        self.line = line
        self.column = column
        self.reason = message


class UnreadableFile(DeploymentFileError):
    """The file could not be read, or is not UTF-8 text."""


class InvalidJson(DeploymentFileError):
    """The file is not well-formed JSON."""

    def __init__(self, file: str, message: str, line: int, column: int) -> None:
        super().__init__(file, f"not valid JSON: {message}", line, column)


class NotADeploymentManifest(DeploymentFileError):
    """The file is JSON but holds no `modulesContent` (nor `content`, nor `moduleContent`)."""


class SignedManifest(DeploymentFileError):
    """The manifest carries an `integrity` signature that a rewrite would break."""


class AmbiguousManifest(DeploymentFileError):
    """The manifest names a key twice: which one IoT Edge reads is not what a reader sees."""
