"""The `service:` section of `mirror.yaml`: durations, crontab schedules (weekdays as
crontab counts them), the listen address, the time zone, and errors that name file,
line and key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mirror.errors import ConfigError
from mirror.settings.config import load_config
from mirror.settings.service import Schedule, ServiceSettings, cron_fields, cron_trigger

# --- durations ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (0, 0.0),
        (2.5, 2.5),
        ("90", 90.0),
        ("90s", 90.0),
        ("15m", 900.0),
        ("1.5h", 5400.0),
        ("1d", 86400.0),
        (" 10 m ", 600.0),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    settings = ServiceSettings.model_validate({"grace_period": value})
    assert settings.grace_period == seconds
    assert type(settings.grace_period) is float


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "must not be negative"),
        (-0.5, "must not be negative"),
        ("-1", "must be a duration"),
        ("abc", "must be a duration"),
        ("true", "must be a duration"),
        (True, "must be a duration"),
        ("15 minutes", "must be a duration"),
        ("1w", "must be a duration"),
        ("", "must be a duration"),
        (None, "must be a duration"),
    ],
)
def test_durations_refused(value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ServiceSettings.model_validate({"misfire_grace": value})


def test_durations_everywhere() -> None:
    settings = ServiceSettings.model_validate(
        {
            "release_feed": {"every": "30m"},
            "github_releases": {"every": "2h"},
            "tag_watch": {"every": "5m"},
            "schedules": [{"every": "1h", "jitter": "5m"}],
        }
    )
    assert settings.release_feed.every == 1800.0
    assert settings.github_releases.every == 7200.0
    assert settings.tag_watch.every == 300.0
    assert (settings.schedules[0].every, settings.schedules[0].jitter) == (3600.0, 300.0)


def test_defaults() -> None:
    settings = ServiceSettings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.timezone == "UTC"
    assert [s.describe() for s in settings.schedules] == ["every 21600s"]
    assert settings.schedules[0].jitter == 300.0
    assert settings.release_feed.every == 900.0
    assert settings.github_releases.enabled is False
    assert settings.webhooks.github is None


# --- cron -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weekday", "names"),
    [
        ("*", "*"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0,6", "sun,sat"),
        ("0", "sun"),
        ("7", "sun"),
        ("1", "mon"),
        ("6", "sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("5-0", "sun,fri,sat"),
        ("5-7", "sun,fri,sat"),
        ("1-7", "sun,mon,tue,wed,thu,fri,sat"),
        ("1-5/2", "mon,wed,fri"),
        ("mon-fri", "mon,tue,wed,thu,fri"),
        ("sat,sun", "sun,sat"),
        ("SUN", "sun"),
        ("fri-mon", "sun,mon,fri,sat"),
    ],
)
def test_cron_weekdays_as_crontab_counts_them(weekday: str, names: str) -> None:
    assert cron_fields(f"30 2 * * {weekday}") == {
        "minute": "30",
        "hour": "2",
        "day": "*",
        "month": "*",
        "day_of_week": names,
    }


def test_cron_fields_pass_through_the_other_fields() -> None:
    assert cron_fields("17 */6 1,15 1-6 *") == {
        "minute": "17",
        "hour": "*/6",
        "day": "1,15",
        "month": "1-6",
        "day_of_week": "*",
    }


def test_a_weekday_schedule_fires_next_on_monday_after_friday_noon() -> None:
    trigger = cron_trigger("30 2 * * 1-5", "UTC", 0)
    friday = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert friday.strftime("%A") == "Friday"
    fire = trigger.get_next_fire_time(None, friday)
    assert fire == datetime(2026, 12, 7, 2, 30, tzinfo=UTC)
    assert fire.strftime("%A") == "Monday"


def test_a_sunday_schedule_fires_on_sunday() -> None:
    friday = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    for weekday in ("0", "7", "sun"):
        fire = cron_trigger(f"0 3 * * {weekday}", "UTC", 0).get_next_fire_time(None, friday)
        assert fire == datetime(2026, 12, 6, 3, 0, tzinfo=UTC), weekday


def test_a_cron_schedule_in_a_time_zone() -> None:
    trigger = cron_trigger("0 2 * * *", "Europe/Berlin", 0)
    fire = trigger.get_next_fire_time(None, datetime(2026, 12, 4, 12, 0, tzinfo=UTC))
    assert fire.astimezone(UTC) == datetime(2026, 12, 5, 1, 0, tzinfo=UTC)


def test_a_cron_error_names_the_expression_once() -> None:
    with pytest.raises(ValueError, match="five fields") as caught:
        cron_trigger("0 2 * *", "UTC", 0)
    message = str(caught.value)
    assert "five fields (minute hour day month weekday), not 4" in message
    assert message.count("cron '0 2 * *'") == 1, (
        f"the expression is named twice: {message!r} (cron_fields already prefixes "
        "`cron <expression>:` and cron_trigger prefixes it again)"
    )


def test_jitter_is_passed_on() -> None:
    assert cron_trigger("0 2 * * *", "UTC", 300.0).jitter == 300


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("30 2 * *", "five fields"),
        ("30 2 * * 1 1", "five fields"),
        ("30 2 * * 8", "not a weekday: '8'"),
        ("30 2 * * funday", "not a weekday: 'funday'"),
        ("30 2 * * 1-9", "not a weekday: '9'"),
        ("61 2 * * *", "cron '61 2 \\* \\* \\*'"),
        ("30 25 * * *", "cron '30 25"),
        ("30 2 * * */0", "cron '30 2"),
    ],
)
def test_invalid_cron_refused(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cron_trigger(expression, "UTC", 0)
    with pytest.raises(ValidationError, match=message):
        ServiceSettings.model_validate({"schedules": [{"cron": expression}]})


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"cron": "0 * * * *", "every": "1h"}, "set exactly one of cron and every"),
        ({}, "set exactly one of cron and every"),
        ({"jitter": "5m"}, "set exactly one of cron and every"),
        ({"every": "0.5s"}, "every: must be at least 1s"),
        ({"every": "1h", "cron_": "x"}, "Extra inputs"),
    ],
)
def test_schedules_refused(schedule: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ServiceSettings.model_validate({"schedules": [schedule]})


def test_schedules_read() -> None:
    settings = ServiceSettings.model_validate(
        {"schedules": [{"cron": "17 */6 * * *", "jitter": "5m"}, {"every": "1h"}]}
    )
    assert [s.describe() for s in settings.schedules] == ["cron '17 */6 * * *'", "every 3600s"]
    assert settings.schedules[0] == Schedule(cron="17 */6 * * *", jitter=300.0)


# --- listen, time zone, the rest ----------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [
        ("127.0.0.1:8080", "127.0.0.1", 8080),
        ("0.0.0.0:9000", "0.0.0.0", 9000),
        ("localhost:1", "localhost", 1),
        ("[::1]:8443", "::1", 8443),
        ("[::]:65535", "::", 65535),
        (" mirror.example.com:80 ", "mirror.example.com", 80),
    ],
)
def test_listen(listen: str, host: str, port: int) -> None:
    settings = ServiceSettings(listen=listen)
    assert (settings.host, settings.port) == (host, port)
    assert settings.listen == listen.strip()


@pytest.mark.parametrize(
    "listen",
    ["8080", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:port", ":8080", "::1:80"],
)
def test_listen_refused(listen: str) -> None:
    with pytest.raises(ValidationError, match="must be host:port"):
        ServiceSettings(listen=listen)


def test_time_zone() -> None:
    assert ServiceSettings(timezone="Europe/Berlin").timezone == "Europe/Berlin"
    for zone in ("Mars/Olympus", "", "../etc/passwd"):
        with pytest.raises(ValidationError, match="unknown time zone"):
            ServiceSettings(timezone=zone)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"notify": [{"url": "ftp://x"}]}, "must be an http\\(s\\) URL"),
        ({"github_releases": {"repository": "azure-iotedge"}}, "must be owner/name"),
        ({"max_body_bytes": 10}, "greater than or equal to 1024"),
        ({"webhooks": {"github": {}}}, "secret_env"),
    ],
)
def test_other_settings_refused(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ServiceSettings.model_validate(section)


# --- through mirror.yaml --------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mirror.yaml"
    path.write_text(text)
    return path


def test_a_service_section_is_read(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            "service:\n"
            "  listen: 0.0.0.0:9090\n"
            "  timezone: Europe/Berlin\n"
            "  schedules:\n"
            "    - cron: '30 2 * * 1-5'\n"
            "  release_feed: {every: 30m}\n"
            "  webhooks:\n"
            "    github: {secret_env: MIRROR_GITHUB_SECRET}\n",
        )
    )
    service = config.service
    assert (service.host, service.port, service.timezone) == ("0.0.0.0", 9090, "Europe/Berlin")
    assert service.schedules == (Schedule(cron="30 2 * * 1-5"),)
    assert service.release_feed.every == 1800.0
    assert service.webhooks.github is not None
    assert service.webhooks.github.repositories == ("Azure/azure-iotedge",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "service:\n  listen: nowhere\n",
            "mirror.yaml:2: service.listen: must be host:port",
        ),
        (
            "service:\n  run_at_start: true\n  grace_period: soon\n",
            "mirror.yaml:3: service.grace_period: must be a duration such as 90, 15m or 1h",
        ),
        (
            "service:\n  misfire_grace: -1\n",
            "mirror.yaml:2: service.misfire_grace: must not be negative",
        ),
        (
            "service:\n  schedule: []\n",
            "mirror.yaml:2: service.schedule: unknown key (did you mean schedules?)",
        ),
        (
            "service:\n  timezone: Mars/Olympus\n",
            "mirror.yaml:2: service.timezone: unknown time zone 'Mars/Olympus'",
        ),
        (
            "service:\n  schedules:\n    - every: 1h\n    - cron: '0 * * * *'\n      every: 1h\n",
            "mirror.yaml:4: service.schedules[1]: set exactly one of cron and every",
        ),
        (
            "service:\n  schedules:\n    - cron: '0 2 * *'\n",
            "mirror.yaml:3: service.schedules[0]: cron '0 2 * *': ",
        ),
        (
            "service:\n  schedules:\n    - cron: '0 2 * * 8'\n",
            "mirror.yaml:3: service.schedules[0]: cron '0 2 * * 8': not a weekday: '8'",
        ),
        (
            "service:\n  webhooks:\n    github: {repositories: [Azure/azure-iotedge]}\n",
            "mirror.yaml:3: service.webhooks.github.secret_env: required key is missing",
        ),
        (
            "service:\n  tag_watch:\n    evry: 5m\n",
            "mirror.yaml:3: service.tag_watch.evry: unknown key (did you mean every?)",
        ),
    ],
)
def test_a_bad_service_key_names_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
