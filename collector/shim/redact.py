"""Keeping secrets on the machine: what the shim reports is scrubbed of anything secret-looking.

Covered: values of arguments and `NAME=value` pairs whose names contain password, passwd,
secret, token, key or credential; `user:password@` in URLs; and the values of environment
variables with such names wherever they appear. The environment itself is never sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

MASK = "***"
_SECRET_NAME = r"[\w.-]*(?:password|passwd|secret|token|key|credential)[\w.-]*"
_IS_SECRET_NAME = re.compile(rf"^-*{_SECRET_NAME}$", re.IGNORECASE)
# name=value, name: value, "name": "value"
_PAIR = re.compile(
    rf"""(?P<name>["']?{_SECRET_NAME}["']?\s*[=:]\s*)(?P<quote>["']?)(?P<value>[^\s"',;&]+)""",
    re.IGNORECASE,
)
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@", re.IGNORECASE
)


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """Values of secret-named environment variables, longest first (so none masks a part)."""
    values = {v for k, v in environ.items() if _IS_SECRET_NAME.match(k) and len(v) >= 4}
    return sorted(values, key=len, reverse=True)


def redact_text(text: str, secrets: Sequence[str] = ()) -> str:
    for value in secrets:
        text = text.replace(value, MASK)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _PAIR.sub(lambda m: f"{m['name']}{m['quote']}{MASK}", text)


def redact_args(args: Sequence[str], secrets: Sequence[str] = ()) -> list[str]:
    """The command line with secret values masked: `--token X`, `--token=X`, `PASSWORD=X`, URLs."""
    redacted: list[str] = []
    mask_next = False
    for arg in args:
        if mask_next:
            redacted.append(MASK)
            mask_next = False
            continue
        if arg.startswith("-") and "=" not in arg and _IS_SECRET_NAME.match(arg):
            redacted.append(arg)
            mask_next = True
            continue
        redacted.append(redact_text(arg, secrets))
    return redacted
