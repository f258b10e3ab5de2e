"""The policy file (`pipewarden.toml`): per job and per dataset, what pipewarden enforces.

Declarative and versioned with the pipelines. Parsing is pure (text in, Policy out); a
policy that cannot be used is refused with the file, the line and the reason.

    [defaults]
    mode = "monitor"                 # or "enforce"

    [[job]]
    namespace = "shop"               # optional; name is a glob
    name = "export_*"
    mode = "enforce"
    owner = "data-eng"
    schedule = "0 2 * * *"           # cron, with grace
    grace = "30m"
    sensitivity = 3.5
    block_on_upstream_failure = true

    [[dataset]]
    name = "crm.users"               # namespace optional; glob
    pii = ["email", "phone"]         # column-level tags
    [[dataset]]
    name = "public_share.*"
    public = true
    freshness = "26h"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Any

MODES = ("monitor", "enforce")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class PolicyError(ValueError):
    """The policy cannot be used: where (file and line) and why."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source, self.line, self.reason = source, line, reason
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class JobPolicy:
    name: str = "*"
    namespace: str | None = None
    mode: str | None = None
    owner: str | None = None
    schedule: str | None = None
    grace: timedelta | None = None
    sla: timedelta | None = None
    sensitivity: float | None = None
    block_on_upstream_failure: bool | None = None

    def matches(self, namespace: str, name: str) -> bool:
        return _matches(self.namespace, self.name, namespace, name)


@dataclass(frozen=True)
class DatasetPolicy:
    name: str = "*"
    namespace: str | None = None
    pii: tuple[str, ...] = ()
    public: bool | None = None
    freshness: timedelta | None = None

    def matches(self, namespace: str, name: str) -> bool:
        return _matches(self.namespace, self.name, namespace, name)


@dataclass(frozen=True)
class JobSettings:
    """What the policy says about one job: every matching entry, later ones winning."""

    mode: str = "monitor"
    owner: str | None = None
    schedule: str | None = None
    grace: timedelta = timedelta(minutes=30)
    sla: timedelta | None = None
    sensitivity: float | None = None
    block_on_upstream_failure: bool = False


@dataclass(frozen=True)
class DatasetSettings:
    pii: frozenset[str] = frozenset()
    public: bool = False
    freshness: timedelta | None = None


@dataclass(frozen=True)
class Policy:
    mode: str = "monitor"
    jobs: tuple[JobPolicy, ...] = ()
    datasets: tuple[DatasetPolicy, ...] = ()
    source: str = "(no policy)"

    def for_job(self, namespace: str, name: str) -> JobSettings:
        values: dict[str, Any] = {"mode": self.mode}
        for entry in self.jobs:
            if entry.matches(namespace, name):
                values |= {
                    key: value
                    for key, value in vars(entry).items()
                    if value is not None and key not in ("name", "namespace")
                }
        return JobSettings(**values)

    def for_dataset(self, namespace: str, name: str) -> DatasetSettings:
        pii: set[str] = set()
        public, freshness = False, None
        for entry in self.datasets:
            if entry.matches(namespace, name):
                pii.update(entry.pii)
                public = entry.public if entry.public is not None else public
                freshness = entry.freshness or freshness
        return DatasetSettings(pii=frozenset(pii), public=public, freshness=freshness)


def parse_policy(text: str, source: str = "pipewarden.toml") -> Policy:
    """The policy in `text`, or PolicyError naming the line and the reason."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(
            source, _line_in_message(str(error)), f"not valid TOML: {error}"
        ) from None
    for key in document:
        if key not in ("defaults", "job", "dataset"):
            raise PolicyError(source, _line_of(text, key), f"unknown section {key!r}")
    defaults = _Entry(source, document.get("defaults", {}), text, "defaults", None)
    defaults.only({"mode"})
    jobs = tuple(_job(entry) for entry in _entries(document, "job", source, text))
    datasets = tuple(_dataset(entry) for entry in _entries(document, "dataset", source, text))
    return Policy(mode=defaults.mode() or "monitor", jobs=jobs, datasets=datasets, source=source)


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `26h`, `2d`, `1w`; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 30m, 26h or 2d")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


_JOB_KEYS = {
    "name", "namespace", "mode", "owner", "schedule", "grace", "sla", "sensitivity",
    "block_on_upstream_failure",
}  # fmt: skip
_DATASET_KEYS = {"name", "namespace", "pii", "public", "freshness"}


def _job(entry: _Entry) -> JobPolicy:
    entry.only(_JOB_KEYS)
    schedule = entry.text("schedule")
    if schedule is not None and len(schedule.split()) != 5:
        raise entry.error("schedule", f"{schedule!r} is not a cron expression of 5 fields")
    return JobPolicy(
        name=entry.text("name") or "*",
        namespace=entry.text("namespace"),
        mode=entry.mode(),
        owner=entry.text("owner"),
        schedule=schedule,
        grace=entry.duration("grace"),
        sla=entry.duration("sla"),
        sensitivity=entry.positive("sensitivity"),
        block_on_upstream_failure=entry.flag("block_on_upstream_failure"),
    )


def _dataset(entry: _Entry) -> DatasetPolicy:
    entry.only(_DATASET_KEYS)
    pii = entry.values.get("pii", [])
    if not isinstance(pii, list) or not all(isinstance(c, str) and c for c in pii):
        raise entry.error("pii", 'must be a list of column names, such as ["email"]')
    return DatasetPolicy(
        name=entry.text("name") or "*",
        namespace=entry.text("namespace"),
        pii=tuple(pii),
        public=entry.flag("public"),
        freshness=entry.duration("freshness"),
    )


class _Entry:
    """One table of the policy, with the line of each of its keys for error messages."""

    def __init__(self, source: str, values: Any, text: str, kind: str, index: int | None) -> None:
        self.source, self.kind = source, kind
        self.header, self.lines = _entry_lines(text, kind, index)
        if not isinstance(values, dict):
            raise PolicyError(source, self.header, f"[{kind}] must be a table")
        self.values: dict[str, Any] = values

    def error(self, key: str | None, reason: str) -> PolicyError:
        line = self.lines.get(key, self.header) if key else self.header
        label = f"{key} " if key else ""
        return PolicyError(self.source, line, f"[{self.kind}] {label}{reason}")

    def only(self, keys: set[str]) -> None:
        for key in self.values:
            if key not in keys:
                raise self.error(key, f"is not a known key; known: {', '.join(sorted(keys))}")

    def text(self, key: str) -> str | None:
        value = self.values.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise self.error(key, f"must be a non-empty string, not {value!r}")
        return value

    def flag(self, key: str) -> bool | None:
        value = self.values.get(key)
        if value is not None and not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def positive(self, key: str) -> float | None:
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.error(key, f"must be a positive number, not {value!r}")
        return float(value)

    def duration(self, key: str) -> timedelta | None:
        value = self.values.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(key, f'must be a duration such as "30m", not {value!r}')
        try:
            return parse_duration(value)
        except ValueError as error:
            raise self.error(key, str(error)) from None

    def mode(self) -> str | None:
        value = self.values.get("mode")
        if value is not None and value not in MODES:
            raise self.error("mode", f'must be "monitor" or "enforce", not {value!r}')
        return value


def _entries(document: dict[str, Any], kind: str, source: str, text: str) -> list[_Entry]:
    entries = document.get(kind, [])
    if not isinstance(entries, list):
        raise PolicyError(source, _line_of(text, kind), f"{kind} entries are written [[{kind}]]")
    return [_Entry(source, values, text, kind, index) for index, values in enumerate(entries)]


def _matches(pattern_namespace: str | None, pattern: str, namespace: str, name: str) -> bool:
    if pattern_namespace is not None and not fnmatchcase(namespace, pattern_namespace):
        return False
    return fnmatchcase(name, pattern)


def _entry_lines(text: str, kind: str, index: int | None) -> tuple[int | None, dict[str, int]]:
    """The line of a table's header (`[kind]`, or the index-th `[[kind]]`) and of its keys."""
    brackets = r"\[" if index is None else r"\[\["
    headers = list(re.finditer(rf"^\s*{brackets}\s*{kind}\s*\]", text, re.MULTILINE))
    position = index or 0
    if position >= len(headers):
        return None, {}
    start = headers[position].start()
    header = text.count("\n", 0, start) + 1
    following = re.compile(r"^\s*\[", re.MULTILINE).search(text, headers[position].end())
    block = text[start : following.start() if following else len(text)]
    lines: dict[str, int] = {}
    for offset, line in enumerate(block.splitlines()):
        key = re.match(r"\s*([A-Za-z0-9_\-]+)\s*=", line)
        if key:
            lines.setdefault(key[1], header + offset)
    return header, lines


def _line_of(text: str, key: str) -> int | None:
    match = re.search(rf"^\s*\[*\s*{re.escape(key)}\b", text, re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _line_in_message(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match[1]) if match else None
