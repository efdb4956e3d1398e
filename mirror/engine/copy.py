"""Executing a content plan: blobs first, then child manifests, then each tag last.

A bounded pool of worker threads runs the steps. Work is queued in plan order
(uploads, then mounts, then child manifests, then tags) and each step waits only for
the steps it depends on, which were all queued before it: workers never wait for
work that has not started, tags complete as soon as their own content is in place,
and one failed blob fails only the tags that need it.

Blobs stream source -> target and are verified against their digest on the way (the
last chunk is held back until the hash matches); a blob already in the target costs
one request and no transfer; a blob another repository of the target received is
mounted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from mirror.digest import verified
from mirror.engine.plan import BlobCopy, ContentPlan, ManifestCopy, ReferrerCopy, TagWrite
from mirror.errors import AuthenticationError, CircuitOpen, MirrorError, NotFound, Unreachable
from mirror.transport.endpoint import RETRIES, RetryPolicy
from mirror.transport.store import Store, Written

BlobOutcome = Written
Key = tuple[str, str, str]  # ("blob" | "manifest", repository, digest)


class CopyReporter(Protocol):
    """What the engine tells the user about (progress bars or log lines). Called from
    worker threads."""

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
    referrers: list[ReferrerCopy] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    not_attempted: list[str] = field(default_factory=list)  # after a failure, or the stop

    @property
    def ok(self) -> bool:
        return not self.failures and not self.not_attempted


class DependencyFailed(MirrorError):
    """A step was not attempted because something it needs failed."""


class Cancelled(MirrorError):
    """The run was interrupted; the step stopped where it was."""


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
        stop: threading.Event | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.reporter = reporter
        self.concurrency = concurrency
        self.retry = retry or RetryPolicy()
        self._done: dict[Key, Future[None]] = {}
        self._result = CopyResult()
        self._lock = threading.Lock()
        self._cancelled = threading.Event()  # set by the copy itself (refused credentials)
        self._stop = stop or threading.Event()  # set from outside: SIGTERM, shutdown

    def apply(self, plan: ContentPlan) -> CopyResult:
        """Run every step; on KeyboardInterrupt, stop the transfers and re-raise."""
        self._result = CopyResult()
        self.reporter.transfer_started(plan)
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="copy")
        try:
            for blob in plan.blobs:
                key = ("blob", blob.repository, blob.descriptor.digest)
                self._done[key] = pool.submit(self._blob, blob)
            for manifest in plan.manifests:
                key = ("manifest", manifest.repository, manifest.manifest.digest)
                self._done[key] = pool.submit(self._manifest, manifest)
            tags = []
            for write in plan.tags:
                tags.append(future := pool.submit(self._tag, write))
                self._done.setdefault(("manifest", write.repository, write.digest), future)
            for referrer in plan.referrers:
                key = ("manifest", referrer.repository, referrer.digest)
                self._done[key] = pool.submit(self._referrer, referrer)
            for future in [*self._done.values(), *tags]:
                future.exception()
        except KeyboardInterrupt:
            self._cancelled.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return self._result

    # -- steps ------------------------------------------------------------------

    def _blob(self, copy: BlobCopy) -> None:
        mount_from = copy.mount_from
        if mount_from is not None:
            first = self._done[("blob", mount_from, copy.descriptor.digest)]
            if first.exception() is not None:
                mount_from = None  # the first copy failed: upload here instead
        try:
            outcome = self._with_retries(lambda: self._transfer(copy, mount_from))
        except (AuthenticationError, CircuitOpen) as error:
            # Refused credentials, or a registry that stopped answering, fail every
            # other transfer the same way: stop now and report it once, not per blob.
            already = self._cancelled.is_set()
            self._cancelled.set()
            if not already:
                self._fail(f"blob {copy.descriptor.digest} ({copy.reason})", error)
            raise
        except Exception as error:
            self._fail(f"blob {copy.descriptor.digest} ({copy.reason})", error)
            raise
        with self._lock:
            if outcome == "uploaded":
                self._result.uploaded += 1
            elif outcome == "mounted":
                self._result.mounted += 1
            else:
                self._result.present += 1
        self.reporter.blob_done(copy, outcome)

    def _halted(self) -> bool:
        return self._cancelled.is_set() or self._stop.is_set()

    def _transfer(self, copy: BlobCopy, mount_from: str | None) -> BlobOutcome:
        if self._halted():
            raise Cancelled("not attempted: the run was stopped")
        return self.target.write_blob(
            copy.repository,
            copy.descriptor,
            lambda: self._verified_source(copy),
            mount_from,
        )

    @contextmanager
    def _verified_source(self, copy: BlobCopy) -> Iterator[Iterator[bytes]]:
        with self.source.read_blob(copy.repository, copy.descriptor) as chunks:
            read = _read_from(self.source.name, chunks)
            yield self._counted(verified(read, copy.descriptor.digest, copy.descriptor.size))

    def _counted(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if self._halted():
                raise Cancelled("interrupted")
            with self._lock:
                self._result.bytes_copied += len(chunk)
            self.reporter.bytes_copied(len(chunk))
            yield chunk

    def _manifest(self, copy: ManifestCopy) -> None:
        what = f"manifest {copy.manifest.digest} ({copy.reason})"
        try:
            self._wait_for(copy.repository, copy.needs_manifests, copy.needs_blobs)
            self.target.put_manifest(copy.repository, copy.manifest.digest, copy.manifest)
        except Exception as error:
            self._fail(what, error)
            raise
        with self._lock:
            self._result.manifests += 1

    def _tag(self, write: TagWrite) -> None:
        try:
            self._wait_for(write.repository, write.needs_manifests, write.needs_blobs)
            self.target.put_manifest(write.repository, write.tag, write.manifest)
        except Exception as error:
            self._fail(f"tag {write.repository}:{write.tag}", error)
            raise
        with self._lock:
            self._result.tags.append(write)
        self.reporter.tag_done(write)

    def _referrer(self, copy: ReferrerCopy) -> None:
        """Push a referrer once its content and its subject are in place, and list it."""
        try:
            self._wait_for(copy.repository, copy.needs_manifests, copy.needs_blobs)
            self.target.put_referrer(copy.repository, copy.manifest)
        except Exception as error:
            self._fail(f"referrer {copy.digest} ({copy.reason})", error)
            raise
        with self._lock:
            self._result.referrers.append(copy)

    def _wait_for(self, repository: str, manifests: Iterable[str], blobs: Iterable[str]) -> None:
        """Wait for what a manifest or tag needs; raise if any of it failed, or if the run
        was stopped (nothing new is pushed once it is)."""
        keys = [("manifest", repository, d) for d in manifests]
        keys += [("blob", repository, d) for d in blobs]
        for key in keys:
            future = self._done.get(key)
            if future is not None and future.exception() is not None:
                raise DependencyFailed(f"needs {key[0]} {key[2]}, which failed")
        if self._halted():
            raise Cancelled("not attempted: the run was stopped")

    def _fail(self, what: str, error: BaseException) -> None:
        if not isinstance(error, DependencyFailed | Cancelled):
            self.reporter.failed(what, error)
        with self._lock:
            if isinstance(error, DependencyFailed | Cancelled):
                self._result.not_attempted.append(what)
            else:
                self._result.failures.append((what, describe(error)))

    def _with_retries(self, attempt: Callable[[], BlobOutcome]) -> BlobOutcome:
        """Run a whole blob transfer again after a transient failure (the stream cannot
        be replayed, so the transfer restarts from its GET)."""
        for number in range(1, self.retry.attempts + 1):
            try:
                return attempt()
            except (AuthenticationError, NotFound, Cancelled, CircuitOpen):
                raise
            except (MirrorError, httpx.HTTPError, httpx.StreamError):
                # StreamError: the registry refused a streamed upload's token and the
                # body cannot be sent twice; the auth flow already holds a new token.
                if number == self.retry.attempts:
                    raise
                RETRIES.retried()
                time.sleep(self.retry.delay(number))
        raise AssertionError("unreachable")  # pragma: no cover


def _read_from(source: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """`chunks` of a source blob; a failure to read them names the source. The upload that
    consumes them must not take a source's broken connection for the target's."""
    try:
        yield from chunks
    except httpx.HTTPError as error:
        reason = str(error) or type(error).__name__
        raise Unreachable(f"cannot read from {source}: {reason}") from error


def describe(error: BaseException) -> str:
    """A one-line description of an error for reports."""
    if isinstance(error, MirrorError):
        return str(error)
    return f"{type(error).__name__}: {error}"
