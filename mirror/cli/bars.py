"""Rich progress bars for a sync on a terminal: bytes transferred and tags written."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from mirror.engine.copy import describe
from mirror.engine.plan import BlobCopy, ContentPlan, TagWrite
from mirror.transport.store import Written


class _AmountColumn(ProgressColumn):
    """Bytes and speed for the transfer bar, a count for the tags bar."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes = DownloadColumn()
        self._speed = TransferSpeedColumn()
        self._count = MofNCompleteColumn()

    def render(self, task: Task) -> Text:
        if task.description == "bytes":
            return Text.assemble(self._bytes.render(task), " ", self._speed.render(task))
        rendered = self._count.render(task)
        return rendered if isinstance(rendered, Text) else Text(str(rendered))


class ProgressReporter:
    """Rich progress bars: bytes transferred and tags written."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description:<6}"),
            BarColumn(),
            _AmountColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._bytes: TaskID | None = None
        self._tags: TaskID | None = None

    def __enter__(self) -> ProgressReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def transfer_started(self, plan: ContentPlan) -> None:
        self._bytes = self.progress.add_task("bytes", total=plan.bytes_total or None)
        self._tags = self.progress.add_task("tags", total=len(plan.tags))

    def bytes_copied(self, count: int) -> None:
        if self._bytes is not None:
            self.progress.advance(self._bytes, count)

    def blob_done(self, copy: BlobCopy, outcome: Written) -> None:
        if outcome == "present" and copy.mount_from is None and self._bytes is not None:
            self.progress.advance(self._bytes, copy.descriptor.size)

    def tag_done(self, write: TagWrite) -> None:
        if self._tags is not None:
            self.progress.advance(self._tags, 1)

    def failed(self, what: str, error: BaseException) -> None:
        self.console.print(f"[red]failed[/red] {what}: {describe(error)}", highlight=False)
