"""The `service:` section of `mirror.yaml`: what `mirror serve` listens on, when it syncs,
and which triggers and webhooks it accepts.

    service:
      listen: 127.0.0.1:8080
      run_at_start: true
      timezone: UTC                     # schedules' time zone
      grace_period: 30s                 # SIGTERM: how long the running copy may take to stop
      misfire_grace: 10m                # a schedule missed by less than this still runs
      schedules:
        - cron: "17 */6 * * *"          # minute hour day month weekday, as crontab reads it
          jitter: 5m
        - every: 1h
      release_feed: {url: https://aka.ms/azure-iotedge-latest-versions, every: 15m}
      github_releases: {enabled: false, repository: Azure/azure-iotedge, token_env: GITHUB_TOKEN}
      tag_watch: {every: 5m}            # HEAD the rolling tags upstream
      verify: {every: 1d, deep: false}  # `mirror verify` of every mirrored tag
      webhooks:
        github: {secret_env: MIRROR_GITHUB_SECRET, repositories: [Azure/azure-iotedge]}
        acr: {header: X-Mirror-Token, secret_env: MIRROR_ACR_SECRET}
        sync: {token_env: MIRROR_SYNC_TOKEN}
      status_token_env: MIRROR_STATUS_TOKEN   # require a bearer token for /status, /metrics, /
      notify: [{url: https://hooks.example.com/mirror, secret_env: MIRROR_NOTIFY_SECRET}]
      max_body_bytes: 1048576

Durations are seconds or a number with `s`, `m`, `h` or `d`. Secrets are named by the
environment variable that holds them, as everywhere in the file.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PlainValidator, field_validator, model_validator

from mirror.yamlfile import Settings

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

DEFAULT_FEED = "https://aka.ms/azure-iotedge-latest-versions"
DEFAULT_LISTEN = "127.0.0.1:8080"
_DURATION = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_LISTEN = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5})")
_CRON_FIELDS = ("minute", "hour", "day", "month", "day_of_week")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


def _seconds(value: object) -> float:
    """`90`, `90s`, `15m`, `1.5h`, `1d` as seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
        seconds = float(match["number"]) * _UNITS[match["unit"]]
    else:
        raise ValueError("must be a duration such as 90, 15m or 1h")
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


Duration = Annotated[float, PlainValidator(_seconds)]


class Schedule(Settings):
    """A cron expression (five crontab fields) or an interval; `jitter` delays each
    run by up to that long, so that many mirrors do not all call at once."""

    cron: str | None = None
    every: Duration | None = None
    jitter: Duration = 0.0

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        if (self.cron is None) == (self.every is None):
            raise ValueError("set exactly one of cron and every")
        if self.every is not None and self.every < 1:
            raise ValueError("every: must be at least 1s")
        if self.cron is not None:
            cron_trigger(self.cron, "UTC", self.jitter)  # refused here, not when serving
        return self

    def describe(self) -> str:
        return f"cron {self.cron!r}" if self.cron is not None else f"every {self.every:g}s"


def cron_fields(expression: str) -> dict[str, str]:
    """The five crontab fields by APScheduler's names. Crontab counts weekdays from
    Sunday = 0 (7 too); APScheduler from Monday = 0, so numbers become names here."""
    parts = expression.split()
    if len(parts) != len(_CRON_FIELDS):
        raise ValueError(
            f"cron {expression!r}: five fields (minute hour day month weekday), not {len(parts)}"
        )
    fields = dict(zip(_CRON_FIELDS, parts, strict=True))
    try:
        fields["day_of_week"] = _weekdays(fields["day_of_week"])
    except ValueError as error:
        raise ValueError(f"cron {expression!r}: {error}") from None
    return fields


def _weekdays(text: str) -> str:
    """A crontab weekday field (`1-5`, `0,6`, `*/2`, `mon-fri`) as a list of day names."""
    if text == "*":
        return text
    days: set[int] = set()
    for part in text.lower().split(","):
        span, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) < 1):
            raise ValueError(f"not a weekday step: {part!r}")
        first, _, last = span.partition("-")
        start = 0 if first == "*" else _weekday(first)
        end = 6 if first == "*" else (_weekday(last) if last else start)
        if end < start:  # `5-0`, or `1-7` read as 1-0: through Sunday
            end += 7
        days |= {day % 7 for day in range(start, end + 1, int(step) if step else 1)}
    return ",".join(_WEEKDAYS[day] for day in sorted(days))


def _weekday(text: str) -> int:
    if text.isdigit() and int(text) <= 7:  # 0 and 7 are both Sunday
        return int(text)
    if text in _WEEKDAYS:
        return _WEEKDAYS.index(text)
    raise ValueError(f"not a weekday: {text!r}")


def cron_trigger(expression: str, timezone: str, jitter: float) -> CronTrigger:
    """APScheduler's trigger for a crontab expression, with jitter (`from_crontab` takes
    none, so the trigger is built from the fields)."""
    from apscheduler.triggers.cron import CronTrigger

    fields = cron_fields(expression)  # its errors name the expression already
    try:
        return CronTrigger(**fields, timezone=timezone, jitter=int(jitter))
    except ValueError as error:
        raise ValueError(f"cron {expression!r}: {error}") from None


class ReleaseFeed(Settings):
    """The IoT Edge release feed (`product-versions.json`), polled with conditional GETs."""

    enabled: bool = True
    url: str = DEFAULT_FEED
    every: Duration = 900.0


class GithubReleases(Settings):
    """The releases of a GitHub repository, polled through the REST API (off by default:
    unauthenticated polling gets 60 requests an hour)."""

    enabled: bool = False
    repository: str = "Azure/azure-iotedge"
    token_env: str | None = None
    every: Duration = 900.0
    api: str = "https://api.github.com"

    @field_validator("repository")
    @classmethod
    def _owner_name(cls, value: str) -> str:
        if not _REPOSITORY.fullmatch(value):
            raise ValueError("must be owner/name")
        return value


class TagWatch(Settings):
    """HEAD the rolling tags (`1.5`) upstream; a changed digest triggers that line."""

    enabled: bool = True
    every: Duration = 300.0


class Verify(Settings):
    """`mirror verify` on a schedule (never while a sync writes): its findings are in
    `/status`, `/metrics` and the log. `deep` reads and hashes every blob."""

    enabled: bool = True
    every: Duration = 86400.0
    deep: bool = False

    @field_validator("every")
    @classmethod
    def _not_too_often(cls, value: float) -> float:
        if value < 1:
            raise ValueError("must be at least 1s")
        return value


class GithubHook(Settings):
    """`POST /hooks/github`: GitHub `release` events, signed with the shared secret."""

    secret_env: str
    repositories: tuple[str, ...] = ("Azure/azure-iotedge",)


class AcrHook(Settings):
    """`POST /hooks/acr`: ACR push/delete events; ACR signs nothing, so a shared secret
    travels in a header the webhook was created with (`--headers`)."""

    secret_env: str
    header: str = "X-Mirror-Token"


class SyncHook(Settings):
    """`POST /hooks/sync`: ask for a sync of named repositories or lines (bearer token)."""

    token_env: str


class Webhooks(Settings):
    github: GithubHook | None = None
    acr: AcrHook | None = None
    sync: SyncHook | None = None


class Notify(Settings):
    """An outbound webhook: a JSON summary of every run, signed with HMAC-SHA256."""

    url: str
    secret_env: str | None = None

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value


class ServiceSettings(Settings):
    listen: str = DEFAULT_LISTEN
    run_at_start: bool = True
    timezone: str = "UTC"
    grace_period: Duration = 30.0
    misfire_grace: Duration = 600.0
    schedules: tuple[Schedule, ...] = (Schedule(every=6 * 3600.0, jitter=300.0),)
    release_feed: ReleaseFeed = Field(default_factory=ReleaseFeed)
    github_releases: GithubReleases = Field(default_factory=GithubReleases)
    tag_watch: TagWatch = Field(default_factory=TagWatch)
    verify: Verify = Field(default_factory=Verify)
    webhooks: Webhooks = Field(default_factory=Webhooks)
    status_token_env: str | None = None
    notify: tuple[Notify, ...] = ()
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        match = _LISTEN.fullmatch(value.strip())
        if not match or not 0 < int(match["port"]) < 65536:
            raise ValueError("must be host:port, e.g. 127.0.0.1:8080 or 0.0.0.0:8080")
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])
