"""Lint rules about edgeHub: upstream protocol, memory use, protocol heads and message
time-to-live."""

from __future__ import annotations

from collections.abc import Iterator

from mirror.deployment.document import JNumber
from mirror.deployment.lint.containers import bound_ports
from mirror.deployment.lint.context import Check, Issue, LintContext, has_placeholder
from mirror.deployment.lint.finding import Severity
from mirror.deployment.shape import DESIRED, Located, Role

UPSTREAM_PROTOCOLS = ("Amqp", "AmqpWs", "Mqtt", "MqttWs")
HEADS = (("amqp", "AMQP", 5671), ("mqtt", "MQTT", 8883), ("http", "HTTPS", 443))
CONSTRAINED_PLATFORMS = ("arm32v7",)
_PROTOCOLS = {p.lower() for p in UPSTREAM_PROTOCOLS}


def upstream_protocol_mismatch(ctx: LintContext) -> Iterator[Issue]:
    agent, hub = ctx.runtime(Role.AGENT), ctx.runtime(Role.HUB)
    if agent is None or hub is None:
        return
    values = {
        module.name: found
        for module in (agent, hub)
        if (found := module.env_value("UpstreamProtocol")) is not None
    }
    for name, (value, located) in values.items():
        if not has_placeholder(value) and value.lower() not in _PROTOCOLS:
            yield ctx.issue(
                "upstream-protocol-mismatch",
                located,
                f"{name} UpstreamProtocol {value!r} is not one of {', '.join(UPSTREAM_PROTOCOLS)}",
            )
    if len(values) == 1:
        (name, (value, located)), other = next(iter(values.items())), _other(values)
        yield ctx.issue(
            "upstream-protocol-mismatch",
            located,
            f"UpstreamProtocol is set on {name} only: set the same value ({value}) on {other},"
            " or the device can lose its connection when a later deployment changes one",
        )
    elif len(values) == 2:
        (agent_value, _), (hub_value, hub_located) = values["edgeAgent"], values["edgeHub"]
        if agent_value.lower() != hub_value.lower():
            yield ctx.issue(
                "upstream-protocol-mismatch",
                hub_located,
                f"edgeHub UpstreamProtocol {hub_value} differs from edgeAgent's {agent_value}:"
                " use the same value on both",
            )


def _other(values: dict[str, tuple[str, Located]]) -> str:
    return "edgeHub" if "edgeAgent" in values else "edgeAgent"


def optimize_for_performance(ctx: LintContext) -> Iterator[Issue]:
    hub = ctx.runtime(Role.HUB)
    if hub is None or not _constrained(ctx):
        return
    found = hub.env_value("OptimizeForPerformance")
    if found is None or found[0].lower() != "false":
        where = found[1] if found else hub.located
        yield ctx.issue(
            "optimize-for-performance",
            where,
            "these devices look small (arm32v7): set edgeHub env OptimizeForPerformance to"
            " false to reduce its memory use",
        )


def _constrained(ctx: LintContext) -> bool:
    if ctx.settings.constrained_devices is not None:
        return ctx.settings.constrained_devices
    if any(p in ctx.manifest.file for p in CONSTRAINED_PLATFORMS):
        return True
    return any(image.platform in CONSTRAINED_PLATFORMS for _, _, image in ctx.images())


def unused_protocol_head(ctx: LintContext) -> Iterator[Issue]:
    hub = ctx.runtime(Role.HUB)
    if hub is None or hub.create_options.value is None:
        return
    published = bound_ports(hub)
    has_modules = any(m.role is Role.MODULE for m in ctx.manifest.modules)
    for head, label, port in HEADS:
        enabled = hub.env_value(f"{head}Settings__enabled")
        if enabled is not None and enabled[0].lower() == "false":
            continue
        if port in published or (has_modules and head != "http"):
            continue
        yield ctx.issue(
            "unused-protocol-head",
            hub.located,
            f"edgeHub's {label} head is enabled but port {port} is not published: if no"
            f" downstream device uses it, set env {head}Settings__enabled to false to save"
            " memory",
        )


def message_ttl(ctx: LintContext) -> Iterator[Issue]:
    hub = ctx.manifest.hub
    if hub is None or ctx.manifest.is_layered:
        return
    desired = hub.find(*DESIRED)
    ttl = hub.find(*DESIRED, "storeAndForwardConfiguration", "timeToLiveSecs")
    if desired is not None and ttl is None:
        yield ctx.missing(
            "message-ttl",
            desired,
            "storeAndForwardConfiguration.timeToLiveSecs",
            "set storeAndForwardConfiguration.timeToLiveSecs (edgeHub keeps messages 7200 s by"
            " default); lower it on devices with little storage",
        )
        return
    limit = ttl.node.value if ttl is not None and isinstance(ttl.node, JNumber) else None
    if limit is None:
        return
    for name, route in hub.children(*DESIRED, "routes").items():
        route_ttl = route.child("timeToLiveSecs")
        value = route_ttl.node.value if route_ttl and isinstance(route_ttl.node, JNumber) else None
        if route_ttl is not None and value is not None and value > limit:
            yield ctx.issue(
                "message-ttl",
                route_ttl,
                f"route {name} keeps messages {value} s, longer than the store-and-forward"
                f" timeToLiveSecs {limit} s: lower the route's timeToLiveSecs or raise the"
                " global one so they agree",
                Severity.INFO,
            )


CHECKS: dict[str, Check] = {
    "upstream-protocol-mismatch": upstream_protocol_mismatch,
    "optimize-for-performance": optimize_for_performance,
    "unused-protocol-head": unused_protocol_head,
    "message-ttl": message_ttl,
}
