"""The one settings table: every setting once, with its environment variable, default and help.

Values come from, in rising precedence: the defaults below, `PIPEWARDEN_*` environment
variables, then command-line flags (passed as overrides). A value that cannot be read
fails loudly, naming the variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ENV_PREFIX = "PIPEWARDEN_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


def _setting(default: Any, help: str, fallbacks: tuple[str, ...] = ()) -> Any:
    """A setting's default and help; `fallbacks` are other variables read when ours is unset."""
    return field(default=default, metadata={"help": help, "fallbacks": fallbacks})


@dataclass(frozen=True)
class Settings:
    """Everything the collector can be told, with defaults that work on one machine."""

    database_url: str = _setting(
        "sqlite:///./pipewarden.db",
        "SQLAlchemy URL of the store: a SQLite file (the default) or "
        "`postgresql+psycopg://user:password@host:5432/db` for several collectors.",
    )
    host: str = _setting("127.0.0.1", "Address `pipewarden serve` listens on.")
    port: int = _setting(5000, "Port `pipewarden serve` listens on (Marquez's port).")
    max_body_bytes: int = _setting(
        10 * 1024 * 1024,
        "Largest request body accepted, in bytes, after gzip decompression; larger is 413.",
    )
    max_batch_events: int = _setting(
        10_000, "Most events accepted in one `POST /api/v1/lineage/batch`; more is 413."
    )
    max_json_depth: int = _setting(
        64,
        "Deepest nesting of arrays and objects accepted in a JSON body (a batch's own array "
        "counts); deeper is 400, refused before parsing.",
    )
    body_timeout: float = _setting(
        30.0,
        "Seconds a request body may stall (no bytes arriving) before the request is answered "
        "408: a body shorter than its Content-Length is not waited for forever.",
    )
    derivation_backlog: int = _setting(
        250_000,
        "Events acknowledged but not yet derived (runs, jobs, datasets, lineage) beyond which "
        "the collector derives before taking more; below it a burst is acknowledged at the "
        "speed of the raw insert and derived when ingestion pauses (and 1,000 events a second "
        "meanwhile).",
    )
    background_process: str = _setting(
        "auto",
        "Whether `pipewarden serve` derives runs, jobs, datasets and lineage from stored "
        "events, and runs the detectors, in a second process, on another core than the one "
        "answering requests: `auto` does with PostgreSQL (1.4 times the single-event rate on "
        "two cores) and not with SQLite, where the two processes take turns for its one write "
        "lock (measured slower); `on` or `off` decide it for either store.",
    )
    read_wait: float = _setting(
        2.0,
        "Seconds a read (lineage, gates, findings, ...) waits for the events acknowledged "
        "before it to be derived; after that it answers from what is derived.",
    )
    log_level: str = _setting("info", "Log level: debug, info, warning or error.")
    policy: str = _setting(
        "pipewarden.toml",
        "Policy file (modes, schedules, owners, PII and public tags, freshness); used when it "
        "exists, refused at start with its line when invalid, reloaded on SIGHUP.",
    )
    auth_file: str = _setting(
        "",
        "Token file (`pipewarden token create` writes it); when set, every `/api/v1` request "
        "needs `Authorization: Bearer` with one of its tokens. Refused at start when invalid, "
        "reloaded on SIGHUP; empty leaves the API open.",
    )
    metrics_token: str = _setting(
        "", "When set, `GET /metrics` needs `Authorization: Bearer` with this value."
    )
    evaluator_interval: float = _setting(
        30.0,
        "Seconds between the evaluator's checks for overruns and missed runs (finished runs "
        "are judged as they arrive).",
    )
    retention_days: int = _setting(
        90,
        "Days of history kept: runs and raw events older than that (by event time) are "
        "removed in small batches, keeping each job's latest run and each dataset's current "
        "schema; 0 keeps everything.",
    )
    namespace: str = _setting(
        "default", "Job namespace `pipewarden run` reports under when --namespace is not given."
    )
    url: str = _setting(
        "http://127.0.0.1:5000",
        "Collector URL used by `pipewarden run` and `replay` (else `OPENLINEAGE_URL`).",
        fallbacks=("OPENLINEAGE_URL",),
    )
    api_key: str = _setting(
        "",
        "Bearer token those clients send (else `OPENLINEAGE_API_KEY`); empty sends none.",
        fallbacks=("OPENLINEAGE_API_KEY",),
    )
    client_timeout: float = _setting(
        1.0, "Seconds a client call may take before the shim carries on without the collector."
    )
    spool_dir: str = _setting(
        "",
        "Where the shim keeps events until the collector acknowledges them; empty means "
        "`$XDG_STATE_HOME/pipewarden/spool` (`~/.local/state/pipewarden/spool`).",
    )

    @property
    def derives_in_background(self) -> bool:
        """Whether `serve` starts the second process (`background_process`)."""
        if self.background_process == "auto":
            return self.database_url.startswith("postgresql")
        return self.background_process == "on"

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed and checked, the others kept."""
        return _checked(dataclasses.replace(self, **changes))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `PIPEWARDEN_*` variables, then explicit overrides (CLI flags)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields():
            for variable in (env_name(spec.name), *spec.metadata.get("fallbacks", ())):
                if environ.get(variable):
                    values[spec.name] = _parse(variable, environ[variable], spec.type)
                    break
        values.update({name: value for name, value in overrides.items() if value is not None})
        return _checked(cls(**values))


def fields() -> tuple[dataclasses.Field[Any], ...]:
    """The settings table, in declaration order."""
    return dataclasses.fields(Settings)


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def help_of(spec: dataclasses.Field[Any]) -> str:
    return str(spec.metadata["help"])


def env_int(variable: str, text: str) -> int:
    try:
        return int(text.strip().replace("_", ""))
    except ValueError:
        raise SettingsError(f"{variable}={text!r}: not a whole number") from None


def env_float(variable: str, text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise SettingsError(f"{variable}={text!r}: not a number") from None


def env_bool(variable: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{variable}={text!r}: not a boolean (use true or false)")


def _parse(variable: str, text: str, kind: object) -> Any:
    if kind in (int, "int"):
        return env_int(variable, text)
    if kind in (bool, "bool"):
        return env_bool(variable, text)
    if kind in (float, "float"):
        return env_float(variable, text)
    return text


_LOG_LEVELS = {"debug", "info", "warning", "error"}
_BACKGROUND_CHOICES = {"auto", "on", "off"}


def _checked(settings: Settings) -> Settings:
    if settings.max_body_bytes < 1024:
        raise SettingsError(f"{env_name('max_body_bytes')} must be at least 1024 bytes")
    if settings.max_batch_events < 1:
        raise SettingsError(f"{env_name('max_batch_events')} must be at least 1")
    if settings.max_json_depth < 8:
        raise SettingsError(f"{env_name('max_json_depth')} must be at least 8")
    if settings.body_timeout <= 0:
        raise SettingsError(f"{env_name('body_timeout')} must be more than 0 seconds")
    if settings.derivation_backlog < 1:
        raise SettingsError(f"{env_name('derivation_backlog')} must be at least 1")
    if settings.background_process not in _BACKGROUND_CHOICES:
        raise SettingsError(
            f"{env_name('background_process')} must be one of {sorted(_BACKGROUND_CHOICES)}"
        )
    if settings.read_wait < 0:
        raise SettingsError(f"{env_name('read_wait')} must be 0 seconds or more")
    if not 0 < settings.port < 65536:
        raise SettingsError(f"{env_name('port')} must be between 1 and 65535")
    if settings.log_level not in _LOG_LEVELS:
        raise SettingsError(f"{env_name('log_level')} must be one of {sorted(_LOG_LEVELS)}")
    if settings.evaluator_interval <= 0:
        raise SettingsError(f"{env_name('evaluator_interval')} must be more than 0 seconds")
    if settings.retention_days < 0:
        raise SettingsError(f"{env_name('retention_days')} must be 0 (keep everything) or more")
    if not 0 < settings.client_timeout <= 60:
        raise SettingsError(f"{env_name('client_timeout')} must be between 0 and 60 seconds")
    if not settings.url.startswith(("http://", "https://")):
        raise SettingsError(f"{env_name('url')}={settings.url!r}: use http://host:port")
    if not settings.database_url.startswith(("sqlite", "postgresql")):
        raise SettingsError(
            f"{env_name('database_url')}={settings.database_url!r}: "
            "use sqlite:///path.db or postgresql+psycopg://…"
        )
    return settings
