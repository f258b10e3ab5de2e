"""Keeping secrets on the machine: what the shim reports is scrubbed of anything secret-looking.

Covered: values of arguments and `NAME=value` pairs whose names contain password, passwd,
secret, token, key or credential; `user:password@` in URLs; and every secret value found in
the environment or on the command line, wherever else it appears (output, SQL). The
environment itself is never sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MASK = "***"
_SECRET_NAME = r"[\w.-]*(?:password|passwd|secret|token|key|credential)[\w.-]*"
_IS_SECRET_NAME = re.compile(rf"^-*{_SECRET_NAME}$", re.IGNORECASE)
# name=value, name: value, "name": "value", name='several words'
_PAIR = re.compile(
    rf"""(?P<name>["']?{_SECRET_NAME}["']?\s*[=:]\s*)"""
    r"""(?:(?P<quote>["'])(?P<quoted>.*?)(?P=quote)|(?P<bare>[^\s"',;&]+))""",
    re.IGNORECASE,
)
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@", re.IGNORECASE
)
# SQL: PASSWORD 'x', IDENTIFIED BY 'x', SECRET 'x'
_SQL_SECRET = re.compile(
    r"(?P<keyword>\b(?:password|identified\s+by|secret)\s+)'(?:[^']|'')*'", re.IGNORECASE
)
_SQL_LITERAL = re.compile(r"'(?:[^']|'')*'")
_SHORTEST_SECRET = 4  # shorter values are too likely to match innocent text


@dataclass(frozen=True)
class Redactor:
    """Masks the secret values it knows, and anything that looks like a secret."""

    secrets: tuple[str, ...] = ()

    @classmethod
    def for_run(cls, environ: Mapping[str, str], args: Sequence[str]) -> Redactor:
        """Knowing the secret values in the environment and on the command line."""
        values = {v for k, v in environ.items() if _IS_SECRET_NAME.match(k)}
        values.update(_secret_args(args))
        # Longest first, so that no secret masks only part of a longer one.
        ordered = sorted((v for v in values if len(v) >= _SHORTEST_SECRET), key=len, reverse=True)
        return cls(tuple(ordered))

    def text(self, text: str) -> str:
        text = self._known(text)
        text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
        return _PAIR.sub(_mask_pair, text)

    def args(self, args: Sequence[str]) -> list[str]:
        """The command line with secret values masked: `--token X`, `--token=X`, `PASSWORD=X`."""
        redacted: list[str] = []
        mask_next = False
        for arg in args:
            name, equals, _ = arg.partition("=")
            if mask_next:
                redacted.append(MASK)
            elif equals and _IS_SECRET_NAME.match(name):
                redacted.append(f"{name}={MASK}")
            else:
                redacted.append(self.text(arg))
            mask_next = not mask_next and not equals and _is_secret_flag(arg)
        return redacted

    def sql(self, sql: str) -> str:
        """SQL with secrets masked only where they can be: in string literals.

        Column names such as `password_hash` stay, so the SQL still parses for lineage.
        """
        sql = self._known(sql)
        sql = _SQL_SECRET.sub(lambda m: f"{m['keyword']}'{MASK}'", sql)
        return _SQL_LITERAL.sub(lambda m: self.text(m[0]), sql)

    def _known(self, text: str) -> str:
        for value in self.secrets:
            text = text.replace(value, MASK)
        return text


def _mask_pair(match: re.Match[str]) -> str:
    quote = match["quote"] or ""
    return f"{match['name']}{quote}{MASK}{quote}"


def _is_secret_flag(arg: str) -> bool:
    return arg.startswith("-") and bool(_IS_SECRET_NAME.match(arg))


def _secret_args(args: Sequence[str]) -> list[str]:
    """Values given on the command line to secret-named flags or `NAME=value` pairs."""
    values = []
    for previous, arg in zip(["", *args], args, strict=False):
        name, equals, value = arg.partition("=")
        if equals and _IS_SECRET_NAME.match(name):
            values.append(value)
        elif not equals and _is_secret_flag(previous) and "=" not in previous:
            values.append(arg)
    return values
