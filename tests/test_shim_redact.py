"""Nothing secret-looking leaves the machine: redact.py alone, then what `pipewarden run` sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.shim.redact import MASK, Redactor
from tests.shim_helpers import (
    Collector,
    by_type,
    closed_url,
    pipewarden,
    run_args,
    shim_env,
    shim_facet,
    spooled,
    unique_job,
)

# --- redact.py --------------------------------------------------------------------------


def test_secret_values_are_those_of_secret_named_variables_longest_first() -> None:
    environ = {
        "DB_TOKEN": "topsecretvalue",
        "PGPASSWORD": "pgpw1234",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-key-value-long",
        "MY_CREDENTIALS": "credvalue",
        "api_key": "lowercasekey",
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/someone",
        "SHORT_TOKEN": "abc",  # too short to mask safely everywhere
    }
    assert list(Redactor.for_run(environ, []).secrets) == [
        "aws-secret-key-value-long",
        "topsecretvalue",
        "lowercasekey",
        "credvalue",
        "pgpw1234",
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--password", "hunter2"], ["--password", MASK]),
        (["--api-key=abc123"], [f"--api-key={MASK}"]),
        (["--db-passwd", "x1y2z3"], ["--db-passwd", MASK]),
        (["-token", "t0k3n"], ["-token", MASK]),
        (["PGPASSWORD=hunter2", "psql"], [f"PGPASSWORD={MASK}", "psql"]),
        (["postgres://bob:s3cret@db/x"], [f"postgres://bob:{MASK}@db/x"]),
        (["--url=https://u:p4ss@host:8080/p"], [f"--url=https://u:{MASK}@host:8080/p"]),
        (
            ["--date", "2024-01-01", "--verbose", "in.csv"],
            ["--date", "2024-01-01", "--verbose", "in.csv"],
        ),
        (["--password"], ["--password"]),  # nothing after it: nothing to mask, no crash
        (["--client-secret", "--other"], ["--client-secret", MASK]),
    ],
    ids=[
        "flag-then-value",
        "flag-equals-value",
        "passwd",
        "single-dash",
        "env-style-assignment",
        "url-credentials",
        "url-in-flag-value",
        "nothing-secret",
        "flag-last",
        "value-looks-like-a-flag",
    ],
)
def test_redact_args_masks_secret_values(args: list[str], expected: list[str]) -> None:
    assert Redactor().args(args) == expected


def test_redact_args_masks_a_whole_value_with_spaces() -> None:
    # `--password='correct horse'` in a shell is one argv element with a space in it
    assert Redactor().args(["--password=correct horse", "PGPASSWORD=a b c"]) == [
        f"--password={MASK}",
        f"PGPASSWORD={MASK}",
    ]


def test_redact_args_masks_environment_secrets_wherever_they_appear() -> None:
    secrets = Redactor.for_run({"DB_TOKEN": "topsecretvalue"}, []).secrets
    assert Redactor(secrets).args(["--user", "topsecretvalue", "x=topsecretvalue,y"]) == [
        "--user",
        MASK,
        f"x={MASK},y",
    ]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connecting with password=hunter2 now", "hunter2"),
        ("PASSWORD=Hunter2!", "Hunter2!"),
        ("token: abc.def.ghi", "abc.def.ghi"),
        ('{"api_key": "k-123456"}', "k-123456"),
        ("client_secret='sec_val'", "sec_val"),
        ("dsn=postgresql://app:pa55word@db:5432/orders", "pa55word"),
        ("mysql://root:rootpw@localhost/db failed", "rootpw"),
    ],
    ids=["pair", "upper-case", "colon", "json", "quoted", "dsn", "url"],
)
def test_redact_text_masks_pairs_and_url_credentials(text: str, secret: str) -> None:
    redacted = Redactor().text(text)
    assert secret not in redacted
    assert MASK in redacted


def test_redact_text_keeps_what_is_not_secret() -> None:
    text = "loaded 42 rows into public.orders from https://example.com/data.csv in 1.2s\n"
    assert Redactor().text(text) == text


def test_redact_text_masks_a_quoted_value_with_spaces_whole() -> None:
    redacted = Redactor().text("password='correct horse battery staple'")
    for word in ("correct", "horse", "battery", "staple"):
        assert word not in redacted


def test_redact_text_masks_environment_secrets_and_overlapping_ones_whole() -> None:
    secrets = Redactor.for_run({"A_TOKEN": "abcd1234efgh", "B_TOKEN": "abcd1234"}, []).secrets
    redacted = Redactor(secrets).text("a=abcd1234efgh b=abcd1234 c")
    assert "abcd" not in redacted
    assert "efgh" not in redacted
    assert redacted.endswith(" c")


# --- what `pipewarden run` sends --------------------------------------------------------

SECRET_ARGS = ["--password", "hunter2", "--api-key=abc123", "postgres://bob:s3cret@db/x"]
ARG_SECRETS = ("hunter2", "abc123", "s3cret")
ENV_SECRET = "topsecretvalue"
ENV_MARKER = "envmarker-not-to-be-sent-7f3a"


@pytest.mark.e2e
def test_secrets_in_args_env_and_output_never_reach_the_collector(
    collector: Collector, tmp_path: Path
) -> None:
    job = unique_job("redact")
    script = (
        'echo "token is $DB_TOKEN"; '
        'echo "connecting with password=outpw111 to db"; '
        'echo "auth failed: password=errpw222, token $DB_TOKEN" >&2; '
        "exit 1"
    )
    env = shim_env(
        collector.url, tmp_path / "spool", DB_TOKEN=ENV_SECRET, PW_TEST_MARKER=ENV_MARKER
    )
    result = pipewarden(run_args(job, ["sh", "-c", script, "sh", *SECRET_ARGS]), env)
    assert result.returncode == 1
    # the command itself saw the real values: redaction is for the report only
    assert f"token is {ENV_SECRET}" in result.out
    assert "password=outpw111" in result.out

    events = collector.events(job)
    assert by_type(events) == ["START", "FAIL"]
    sent = json.dumps(events)
    for secret in (*ARG_SECRETS, ENV_SECRET, "outpw111", "errpw222"):
        assert secret not in sent, f"{secret!r} reached the collector"
    assert ENV_MARKER not in sent, "the environment was sent"
    assert "PW_TEST_MARKER" not in sent

    facet = shim_facet(events[1])
    assert facet["command"][3:] == [
        "sh",
        "--password",
        MASK,
        f"--api-key={MASK}",
        f"postgres://bob:{MASK}@db/x",
    ]
    assert f"token is {MASK}" in facet["stdoutTail"]
    assert f"password={MASK}" in facet["stdoutTail"]
    assert f"password={MASK}" in facet["stderrTail"]
    assert f"password={MASK}" in events[1]["run"]["facets"]["errorMessage"]["stackTrace"]
    assert spooled(tmp_path / "spool") == []


@pytest.mark.e2e
def test_secrets_spooled_while_the_collector_is_down_are_redacted_on_disk(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "spool"
    env = shim_env(closed_url(), spool, DB_TOKEN=ENV_SECRET, PW_TEST_MARKER=ENV_MARKER)
    job = unique_job("redactspool")
    result = pipewarden(run_args(job, ["sh", "-c", 'echo "$DB_TOKEN"', "sh", *SECRET_ARGS]), env)
    assert result.returncode == 0
    files = spooled(spool)
    assert len(files) == 2
    on_disk = b"".join(path.read_bytes() for path in files).decode()
    for secret in (*ARG_SECRETS, ENV_SECRET, ENV_MARKER):
        assert secret not in on_disk


@pytest.mark.e2e
def test_a_secret_argument_echoed_by_the_command_is_masked_in_the_tail(
    collector: Collector, tmp_path: Path
) -> None:
    """The shim knows `hunter2` is a secret (it follows --password): it must not leak via
    the output tail either, e.g. when a tool prints its own command line in an error."""
    job = unique_job("redactecho")
    result = pipewarden(
        run_args(job, ["sh", "-c", 'echo "running with $*" >&2; exit 2', "sh", *SECRET_ARGS]),
        shim_env(collector.url, tmp_path / "spool"),
    )
    assert result.returncode == 2
    assert "hunter2" in result.err  # the command printed it
    sent = json.dumps(collector.events(job))
    for secret in ARG_SECRETS:
        assert secret not in sent, f"{secret!r} reached the collector"


@pytest.mark.e2e
def test_a_password_in_a_sql_file_does_not_reach_the_collector(
    collector: Collector, tmp_path: Path
) -> None:
    sql = tmp_path / "remote.sql"
    sql.write_text(
        "INSERT INTO local_orders SELECT * FROM dblink("
        "'host=db user=app password=dbl1nkpw', 'SELECT id FROM orders') AS t(id int)"
    )
    job = unique_job("redactsql")
    result = pipewarden(
        run_args(job, ["true"], "--sql", str(sql)), shim_env(collector.url, tmp_path / "spool")
    )
    assert result.returncode == 0
    events = collector.events(job)
    assert by_type(events) == ["START", "COMPLETE"]
    assert "INSERT INTO local_orders" in events[1]["job"]["facets"]["sql"]["query"]
    assert "dbl1nkpw" not in json.dumps(events)


def test_secret_values_given_on_the_command_line_are_masked_everywhere() -> None:
    redactor = Redactor.for_run({}, ["etl", "--password", "hunter2", "--api-key=abc123"])
    assert redactor.text("login with hunter2 and abc123") == f"login with {MASK} and {MASK}"


def test_sql_keeps_columns_named_like_secrets_and_masks_literal_secrets() -> None:
    sql = (
        "INSERT INTO users SELECT id, password_hash FROM raw.users WHERE token_count = 5;\n"
        "SELECT * FROM dblink('host=db user=app password=dbl1nkpw', 'select 1');\n"
        "CREATE USER etl WITH PASSWORD 'pw-in-ddl';"
    )
    redacted = Redactor().sql(sql)
    assert "password_hash FROM raw.users WHERE token_count = 5" in redacted
    assert "dbl1nkpw" not in redacted
    assert "pw-in-ddl" not in redacted
