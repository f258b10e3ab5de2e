"""API tokens: the token file `pipewarden token …` keeps, and what each token may do.

The file (TOML, `PIPEWARDEN_AUTH_FILE`) holds one `[[token]]` table per token with its name,
role, namespaces, the SHA-256 of the token and when it was made; the token itself is shown
once, at creation, and never stored. The collector reads the file at start and on SIGHUP.

    [[token]]
    name = "etl-shop"
    role = "write"                   # read < write < admin
    namespaces = ["shop"]            # "*" for all
    sha256 = "5e88…"
    created = 2024-05-01T02:00:00Z
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import tempfile
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.settings import Settings

log = logging.getLogger(__name__)

ROLES = ("read", "write", "admin")
ALL_NAMESPACES = "*"
TOKEN_PREFIX = "pw_"
_RANK = {role: rank for rank, role in enumerate(ROLES)}
_KEYS = {"name", "role", "namespaces", "sha256", "created"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*token[ \t]*\]\]", re.MULTILINE)
_ANY_TABLE = re.compile(r"^[ \t]*\[", re.MULTILINE)
_FILE_HEADER = (
    "# pipewarden API tokens: written by `pipewarden token create`; only each token's SHA-256\n"
    "# is kept. The collector reads this file at start and on SIGHUP.\n"
)


class AuthFileError(ValueError):
    """The token file cannot be used: where (file and line) and why."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        self.source, self.line, self.reason = source, line, reason
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Token:
    """A token's grant: its role, and the namespaces it reads or writes (`*` for all)."""

    name: str
    role: str
    namespaces: tuple[str, ...]
    sha256: str = ""
    created: datetime | None = None
    _covered: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_covered", frozenset(self.namespaces))

    @property
    def all_namespaces(self) -> bool:
        return ALL_NAMESPACES in self._covered

    def has_role(self, role: str) -> bool:
        """At least `role`: admin can do what write can, write what read can."""
        return _RANK[self.role] >= _RANK[role]

    def covers(self, namespace: str) -> bool:
        return ALL_NAMESPACES in self._covered or namespace in self._covered

    def describe(self) -> str:
        return f"token {self.name!r} ({self.role} on {', '.join(self.namespaces)})"


# The caller when no token file is set: the API is open, so everything is allowed.
ANONYMOUS = Token(name="anonymous", role="admin", namespaces=(ALL_NAMESPACES,))


def new_secret() -> str:
    """A fresh random token, recognisable by its prefix (256 bits of randomness)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenBook:
    """The known tokens, by the SHA-256 of the token.

    A presented token is hashed once and looked up: the lookup's timing depends only on the
    SHA-256 of what was sent, which a caller cannot steer towards a stored one, so it tells
    nothing about the stored tokens; the final comparison is constant-time all the same.
    """

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = tuple(tokens)
        self._by_digest = {bytes.fromhex(token.sha256): token for token in tokens}

    def authenticate(self, presented: str) -> Token | None:
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found = self._by_digest.get(digest)
        if found is None or not hmac.compare_digest(bytes.fromhex(found.sha256), digest):
            return None
        return found


def secret_matches(presented: str, expected: str) -> bool:
    """Constant-time equality of two secrets of any length (compared as their SHA-256)."""
    return hmac.compare_digest(
        hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest(),
        hashlib.sha256(expected.encode()).digest(),
    )


# --- reading ----------------------------------------------------------------------------


def parse_tokens(text: str, source: str) -> tuple[Token, ...]:
    """The tokens in the file's text, or AuthFileError naming the line and the reason."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = re.search(r"line (\d+)", str(error))
        raise AuthFileError(
            source, int(line[1]) if line else None, f"not valid TOML: {error}"
        ) from None
    for key in document:
        if key != "token":
            raise AuthFileError(source, _line_of(text, key), f"unknown key {key!r}: use [[token]]")
    entries = document.get("token", [])
    blocks = _blocks(text)
    if not isinstance(entries, list) or len(blocks) != len(entries):
        raise AuthFileError(source, _line_of(text, "token"), "tokens are written as [[token]]")
    tokens: list[Token] = []
    for entry, block in zip(entries, blocks, strict=True):
        token = _token(_Entry(source, text, block, entry))
        for earlier in tokens:
            if earlier.name == token.name:
                raise AuthFileError(source, block.line, f"a second token named {token.name!r}")
            if earlier.sha256 == token.sha256:
                raise AuthFileError(source, block.line, f"{token.name!r} repeats a token's sha256")
        tokens.append(token)
    return tuple(tokens)


def load_tokens(path: str) -> tuple[Token, ...]:
    """The tokens of the file at `path`; AuthFileError when missing, unreadable or invalid."""
    file = Path(path)
    if not file.exists():
        raise AuthFileError(path, None, "token file not found")
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise AuthFileError(path, None, f"cannot be read: {error}") from None
    return parse_tokens(text, path)


@dataclass(frozen=True)
class _Block:
    start: int  # offset of the `[[token]]` header
    end: int  # offset of the next table header, or the end of the text
    line: int  # line of the header


def _blocks(text: str) -> list[_Block]:
    """Where each `[[token]]` table is in the text: it runs up to the next table header."""
    blocks = []
    for header in _HEADER.finditer(text):
        following = _ANY_TABLE.search(text, header.end())
        end = following.start() if following else len(text)
        blocks.append(_Block(header.start(), end, text.count("\n", 0, header.start()) + 1))
    return blocks


class _Entry:
    """One `[[token]]` table, with the line of each key for error messages."""

    def __init__(self, source: str, text: str, block: _Block, values: Any) -> None:
        self.source, self.header = source, block.line
        if not isinstance(values, dict):
            raise AuthFileError(source, block.line, "[[token]] must be a table")
        self.values: dict[str, Any] = values
        self.lines: dict[str, int] = {}
        for offset, line in enumerate(text[block.start : block.end].splitlines()):
            key = re.match(r"\s*([A-Za-z0-9_\-]+)\s*=", line)
            if key:
                self.lines.setdefault(key[1], block.line + offset)

    def error(self, key: str, reason: str) -> AuthFileError:
        return AuthFileError(self.source, self.lines.get(key, self.header), f"[token] {reason}")


def _token(entry: _Entry) -> Token:
    values = entry.values
    for key in values:
        if key not in _KEYS:
            raise entry.error(key, f"{key} is not a known key; known: {', '.join(sorted(_KEYS))}")
    for key in ("name", "role", "namespaces", "sha256"):
        if key not in values:
            raise entry.error(key, f"{key} is missing")
    name, role, namespaces = values["name"], values["role"], values["namespaces"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise entry.error("name", f"name {name!r} must be letters, digits and . _ @ + -")
    if role not in ROLES:
        raise entry.error("role", f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if (
        not isinstance(namespaces, list)
        or not namespaces
        or not all(isinstance(n, str) and n for n in namespaces)
    ):
        raise entry.error("namespaces", 'namespaces must be a list of names, such as ["shop"]')
    sha256 = values["sha256"]
    if not isinstance(sha256, str) or not _SHA256.match(sha256.lower()):
        raise entry.error("sha256", "sha256 must be 64 hexadecimal digits")
    created = values.get("created")
    if created is not None and not isinstance(created, datetime):
        raise entry.error("created", f"created must be a date and time, not {created!r}")
    return Token(name, role, tuple(namespaces), sha256.lower(), created)


def _line_of(text: str, key: str) -> int | None:
    match = re.search(rf"^\s*\[*\s*{re.escape(key)}\b", text, re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else None


# --- writing ----------------------------------------------------------------------------


def create_token(
    path: Path, name: str, role: str, namespaces: Sequence[str], now: datetime | None = None
) -> tuple[str, Token]:
    """Add a new token to the file (made if absent); the secret is returned, only its hash kept.

    Raises AuthFileError when the file is invalid or already has a token of that name, and
    ValueError when the name, role or namespaces cannot be used.
    """
    text = path.read_text() if path.exists() else _FILE_HEADER
    existing = parse_tokens(text, str(path))
    if any(token.name == name for token in existing):
        raise AuthFileError(str(path), None, f"a token named {name!r} exists; revoke it first")
    secret = new_secret()
    created = (now or datetime.now(UTC)).replace(microsecond=0)
    block = (
        f"\n[[token]]\nname = {_toml_string(name)}\nrole = {_toml_string(role)}\n"
        f"namespaces = [{', '.join(_toml_string(n) for n in namespaces)}]\n"
        f"sha256 = {_toml_string(digest_of(secret))}\n"
        f"created = {created.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}\n"
    )
    new_text = (text if text.endswith("\n") or not text else text + "\n") + block
    try:
        added = parse_tokens(new_text, str(path))[-1]
    except AuthFileError as error:
        raise ValueError(error.reason) from None
    _write_atomically(path, new_text)
    return secret, added


def revoke_token(path: Path, name: str) -> Token:
    """Remove the token named `name` from the file; AuthFileError when there is none."""
    if not path.exists():
        raise AuthFileError(str(path), None, "token file not found")
    text = path.read_text()
    tokens = parse_tokens(text, str(path))
    for token, block in zip(tokens, _blocks(text), strict=True):
        if token.name == name:
            new_text = text[: block.start] + text[block.end :]
            parse_tokens(new_text, str(path))
            _write_atomically(path, new_text)
            return token
    known = ", ".join(token.name for token in tokens) or "none"
    raise AuthFileError(str(path), None, f"no token named {name!r} (known: {known})")


def _toml_string(value: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    escaped = []
    for char in value:
        if char in ('"', "\\"):
            escaped.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            escaped.append(f"\\u{ord(char):04x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'


def _write_atomically(path: Path, text: str) -> None:
    """Replace the file in one step (temporary file, fsync, rename), readable by its owner only."""
    directory = path.parent if str(path.parent) else Path(".")
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- in the collector -------------------------------------------------------------------


class AuthHolder:
    """The tokens in force (None: no token file, the API is open); `reload` on SIGHUP."""

    def __init__(self, settings: Settings) -> None:
        self.path = settings.auth_file
        self.book = TokenBook(load_tokens(self.path)) if self.path else None

    def reload(self) -> bool:
        """Re-read the file; an invalid one is logged and the tokens in force stay."""
        if not self.path:
            return False
        try:
            book = TokenBook(load_tokens(self.path))
        except AuthFileError as error:
            log.error("tokens not reloaded, the previous ones stay in force: %s", error)
            return False
        self.book = book
        log.info("tokens reloaded from %s: %d", self.path, len(book.tokens))
        return True


def access_notice(host: str, holder: AuthHolder) -> str:
    """What `serve` says at start about who may call the API."""
    if holder.book is not None:
        count = len(holder.book.tokens)
        refused = "; with none, every /api/v1 request is refused" if count == 0 else ""
        return (
            f"API tokens: {count} loaded from {holder.path}; every /api/v1 request needs one "
            f"(reloaded on SIGHUP){refused}"
        )
    if is_loopback(host):
        return (
            f"API unauthenticated (no {_AUTH_FILE_VARIABLE}): listening on loopback ({host}) "
            "only, so only this machine can call it"
        )
    return (
        f"WARNING: the API is unauthenticated (no {_AUTH_FILE_VARIABLE}) and listens on "
        f"{host}: anyone who can reach it can read and write; create tokens with "
        f"`pipewarden token create` and set {_AUTH_FILE_VARIABLE}"
    )


_AUTH_FILE_VARIABLE = "PIPEWARDEN_AUTH_FILE"


def is_loopback(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1; anything else (0.0.0.0, a name, an address) is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
