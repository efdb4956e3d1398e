"""The effective settings of a run: the config file, overridden by command-line flags,
and what follows from them (the tag selection, the governance of tag changes, and the
images deployment manifests name, when the run mirrors those too)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from mirror.errors import ConfigError
from mirror.governance.decide import Governance
from mirror.governance.named import Naming
from mirror.governance.selection import Selector, Verdict, select_all
from mirror.governance.versions import Line
from mirror.reference import validate_repository
from mirror.settings.config import Config, load_config

if TYPE_CHECKING:
    from mirror.deployment.demand import Demand
    from mirror.governance.policy import Policy
    from mirror.governance.releases import ReleaseFeed


@dataclass(frozen=True)
class Job:
    """The effective settings of one run: config file overridden by flags."""

    config: Config
    source: str
    target: str
    repositories: tuple[str, ...]
    all_tags: bool
    concurrency: int
    demand: Demand | None = None  # what deployment manifests name, when mirrored too
    naming: Naming | None = None

    @classmethod
    def from_options(
        cls,
        config_path: Path | None,
        source: str | None,
        target: str | None,
        repos: list[str] | None,
        all_tags: bool,
        concurrency: int | None,
        *,
        deployments: bool = False,
        manifests: Sequence[Path] = (),
        values: Mapping[str, str] | None = None,
        allow: Sequence[str] = (),
    ) -> Job:
        """The job the flags and the config describe. With `deployments` (the commands
        that mirror: sync, plan, verify, serve), the images deployment manifests name
        are mirrored too: those of `manifests` alone (and, for the configured
        repositories they name, what the policy selects), else those of the config's
        `deployments` on top of the policy's selection, unless `repos` are named."""
        for option, value in (("--source", source), ("--target", target)):
            if value is not None and not value.strip():
                raise ConfigError(f"{option}: empty; give a registry (host[:port]) or oci:PATH")
        config = load_config(config_path)
        overrides: dict[str, object] = {}
        if repos:
            overrides["repositories"] = tuple(validate_repository(repo) for repo in repos)
        if concurrency is not None:
            overrides["concurrency"] = concurrency
        if overrides:
            config = config.model_copy(update=overrides)
        job = cls(
            config=config,
            source=source or config.source,
            target=target or config.target,
            repositories=config.repositories,
            all_tags=all_tags,
            concurrency=config.concurrency,
        )
        if not deployments or (repos and not manifests):
            return job
        return job._naming(manifests, values or {}, allow)

    def _naming(
        self, manifests: Sequence[Path], values: Mapping[str, str], allow: Sequence[str]
    ) -> Job:
        """This job with what the deployment manifests name (if any are given)."""
        from mirror.deployment.demand import collect, read_manifests  # only when there are some

        settings = self.config.deployments
        paths = list(manifests) or settings.paths()
        if not paths:
            return self
        if self.all_tags:
            raise ConfigError("--all-tags and deployment manifests do not go together")
        secrets = _secret_variables(self.config.model_dump())
        environment = {k: v for k, v in os.environ.items() if k not in secrets}
        known = {**environment, **settings.set, **values}
        demand = collect(read_manifests(paths), registries=settings.registries, values=known)
        named = demand.repositories()
        configured = self.repositories
        policy = frozenset(configured) & frozenset(named) if manifests else frozenset(configured)
        references = {
            repository: {
                reference: "; ".join(n.where for n in places)
                for reference, places in demand.references(repository).items()
            }
            for repository in named
        }
        naming = Naming(references, policy, frozenset(allow) | frozenset(settings.allow))
        kept = [r for r in configured if r in policy]
        repositories = tuple(dict.fromkeys([*kept, *named]))
        return replace(self, repositories=repositories, demand=demand, naming=naming)

    @cached_property
    def policy(self) -> Policy:
        from mirror.governance.policy import DEFAULT_POLICY, load_policy

        return load_policy(self.config.policy or DEFAULT_POLICY)

    def selector(self, feed: ReleaseFeed | None = None) -> Selector:
        """The policy's selection, or every tag with `--all-tags`. The lines a policy
        takes from the release feed come from `feed` (default: the copy shipped)."""
        if self.all_tags:
            return select_all
        from mirror.governance.policy import evaluate

        policy, lines = self.policy, self.lines

        def chosen(repository: str, tags: Sequence[str]) -> Sequence[Verdict]:
            return evaluate(policy, repository, tags, lines=lines, feed=feed)

        return self.naming.selector(chosen) if self.naming is not None else chosen

    @property
    def lines(self) -> list[Line] | None:
        """The `lines` setting, overriding the policy's and the feed's."""
        return [Line.parse(line) for line in self.config.lines] if self.config.lines else None

    def mirrored_lines(self, repository: str, feed: ReleaseFeed | None = None) -> frozenset[Line]:
        """The lines of `repository` this job mirrors (with `--all-tags`: the feed's)."""
        from mirror.governance.policy import resolve_lines
        from mirror.governance.releases import embedded_feed

        rule = None if self.all_tags else self.policy.rule_for(repository)
        if rule is None:
            return (feed or embedded_feed()).current_lines(repository)
        return resolve_lines(rule, repository, lines=self.lines, feed=feed)

    def governance(self, allow_backwards: bool = False) -> Governance:
        """How tags may change. With `--all-tags` the policy is not consulted: specific
        tags are still never overwritten (an upstream rebuild is held)."""
        on_rebuild, carry = {}, {}
        if not self.all_tags:
            rules = {repo: self.policy.rule_for(repo) for repo in self.repositories}
            on_rebuild = {repo: rule.on_rebuild for repo, rule in rules.items() if rule}
            carry = {repo: rule.carry for repo, rule in rules.items() if rule}
        return Governance(
            on_rebuild=on_rebuild,
            carry=carry,
            allow_backwards=allow_backwards,
            today=datetime.now(UTC).date(),
        )


def _secret_variables(settings: object) -> set[str]:
    """The environment variables the config names as holding secrets (every `*_env`
    setting): never substituted into an image, so never printed as part of one."""
    found: set[str] = set()
    if isinstance(settings, dict):
        for key, value in settings.items():
            if str(key).endswith("_env") and isinstance(value, str):
                found.add(value)
            else:
                found |= _secret_variables(value)
    elif isinstance(settings, list | tuple):
        for item in settings:
            found |= _secret_variables(item)
    return found
