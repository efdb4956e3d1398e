"""Executing a content plan: blobs first, then child manifests, then each tag last.

Every step waits only for what it depends on, so tags complete as soon as their own
content is in place and one failed blob fails only the tags that need it. Blobs are
streamed source -> target and verified against their digest on the way (the last
chunk is held back until the hash matches); a blob already in the target costs one
HEAD; a blob another repository of the target received is mounted, not uploaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal, Protocol

import httpx

from mirror.digest import verified
from mirror.errors import AuthenticationError, MirrorError, NotFound
from mirror.plan import BlobCopy, ContentPlan, ManifestCopy, TagWrite
from mirror.transport.endpoint import RetryPolicy
from mirror.transport.store import Store

BlobOutcome = Literal["present", "mounted", "uploaded"]


class CopyReporter(Protocol):
    """What the engine tells the user about (progress bars or log lines)."""

    def transfer_started(self, plan: ContentPlan) -> None: ...

    def bytes_copied(self, count: int) -> None: ...

    def blob_done(self, copy: BlobCopy, outcome: BlobOutcome) -> None: ...

    def tag_done(self, write: TagWrite) -> None: ...

    def failed(self, what: str, error: BaseException) -> None: ...


@dataclass
class CopyResult:
    """What the target received."""

    uploaded: int = 0
    mounted: int = 0
    present: int = 0
    bytes_copied: int = 0
    manifests: int = 0
    tags: list[TagWrite] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class DependencyFailed(MirrorError):
    """A step was not attempted because something it needs failed."""


class Copier:
    """Copies what a `ContentPlan` lists from `source` to `target`."""

    def __init__(
        self,
        source: Store,
        target: Store,
        reporter: CopyReporter,
        *,
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.reporter = reporter
        self.retry = retry or RetryPolicy()
        self._slots = asyncio.Semaphore(concurrency)
        self._done: dict[tuple[str, str, str], asyncio.Future[BaseException | None]] = {}
        self._result = CopyResult()

    async def apply(self, plan: ContentPlan) -> CopyResult:
        self._result = CopyResult()
        loop = asyncio.get_running_loop()
        for blob in plan.blobs:
            self._done[("blob", blob.repository, blob.descriptor.digest)] = loop.create_future()
        for manifest in plan.manifests:
            self._done[("manifest", manifest.repository, manifest.manifest.digest)] = (
                loop.create_future()
            )
        self.reporter.transfer_started(plan)
        await asyncio.gather(
            *(self._blob(blob) for blob in plan.blobs),
            *(self._manifest(manifest) for manifest in plan.manifests),
            *(self._tag(write) for write in plan.tags),
        )
        return self._result

    # -- steps ------------------------------------------------------------------

    async def _blob(self, copy: BlobCopy) -> None:
        key = ("blob", copy.repository, copy.descriptor.digest)
        mount_from = copy.mount_from
        if mount_from is not None:
            first = await self._done[("blob", mount_from, copy.descriptor.digest)]
            if first is not None:
                mount_from = None
        try:
            async with self._slots:
                outcome = await self._with_retries(lambda: self._transfer(copy, mount_from))
        except Exception as error:
            self._fail(f"blob {copy.descriptor.digest} ({copy.reason})", error)
            self._done[key].set_result(error)
            return
        if outcome == "uploaded":
            self._result.uploaded += 1
        elif outcome == "mounted":
            self._result.mounted += 1
        else:
            self._result.present += 1
        self.reporter.blob_done(copy, outcome)
        self._done[key].set_result(None)

    async def _transfer(self, copy: BlobCopy, mount_from: str | None) -> BlobOutcome:
        if await self.target.has_blob(copy.repository, copy.descriptor):
            return "present"
        return await self.target.write_blob(
            copy.repository,
            copy.descriptor,
            lambda: self._verified_source(copy),
            mount_from,
        )

    @asynccontextmanager
    async def _verified_source(self, copy: BlobCopy) -> AsyncIterator[AsyncIterator[bytes]]:
        async with self.source.read_blob(copy.repository, copy.descriptor) as chunks:
            yield self._counted(verified(chunks, copy.descriptor.digest, copy.descriptor.size))

    async def _counted(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self._result.bytes_copied += len(chunk)
            self.reporter.bytes_copied(len(chunk))
            yield chunk

    async def _manifest(self, copy: ManifestCopy) -> None:
        key = ("manifest", copy.repository, copy.manifest.digest)
        what = f"manifest {copy.manifest.digest} ({copy.reason})"
        error = await self._first_failure(copy.repository, copy.needs_manifests, copy.needs_blobs)
        if error is None:
            try:
                await self.target.put_manifest(copy.repository, copy.manifest.digest, copy.manifest)
                self._result.manifests += 1
            except Exception as exc:
                error = exc
        if error is not None:
            self._fail(what, error)
        self._done[key].set_result(error)

    async def _tag(self, write: TagWrite) -> None:
        what = f"tag {write.repository}:{write.tag}"
        needs = (write.needs_manifests, write.needs_blobs)
        error = await self._first_failure(write.repository, *needs)
        if error is None:
            try:
                await self.target.put_manifest(write.repository, write.tag, write.manifest)
            except Exception as exc:
                error = exc
        if error is not None:
            self._fail(what, error)
            return
        self._result.tags.append(write)
        self.reporter.tag_done(write)

    async def _first_failure(
        self, repository: str, manifests: Iterable[str], blobs: Iterable[str]
    ) -> BaseException | None:
        keys = [("manifest", repository, d) for d in manifests]
        keys += [("blob", repository, d) for d in blobs]
        for key in keys:
            future = self._done.get(key)
            error = await future if future is not None else None
            if error is not None:
                return DependencyFailed(f"needs {key[0]} {key[2]}, which failed")
        return None

    def _fail(self, what: str, error: BaseException) -> None:
        if isinstance(error, DependencyFailed):
            message = str(error)
        else:
            message = describe(error)
            self.reporter.failed(what, error)
        self._result.failures.append((what, message))

    async def _with_retries(self, attempt: Callable[[], Awaitable[BlobOutcome]]) -> BlobOutcome:
        """Run a whole blob transfer again after a transient failure (the stream cannot
        be replayed, so the transfer restarts from its GET)."""
        for number in range(1, self.retry.attempts + 1):
            try:
                return await attempt()
            except (AuthenticationError, NotFound):
                raise
            except (MirrorError, httpx.HTTPError):
                if number == self.retry.attempts:
                    raise
                await asyncio.sleep(self.retry.delay(number))
        raise AssertionError("unreachable")  # pragma: no cover


def describe(error: BaseException) -> str:
    """A one-line description of an error for reports."""
    if isinstance(error, MirrorError):
        return str(error)
    return f"{type(error).__name__}: {error}"
