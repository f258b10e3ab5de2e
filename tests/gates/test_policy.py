"""The policy file: what it says per job and dataset, and its refusals with line and reason."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gates.policy import PolicyError, parse_duration, parse_policy

POLICY = """\
[defaults]
mode = "monitor"

[[job]]
namespace = "shop"
name = "export_*"
mode = "enforce"
owner = "data-eng"
schedule = "0 2 * * *"
grace = "30m"
sensitivity = 3.5

[[job]]
name = "export_legacy"
mode = "monitor"

[[dataset]]
name = "crm.users"
pii = ["email", "phone"]

[[dataset]]
name = "public_share.*"
public = true
freshness = "26h"
"""


def test_a_job_takes_every_matching_entry_later_ones_winning() -> None:
    policy = parse_policy(POLICY)
    export = policy.for_job("shop", "export_orders")
    assert (export.mode, export.owner, export.schedule) == ("enforce", "data-eng", "0 2 * * *")
    assert export.grace == timedelta(minutes=30)
    assert export.sensitivity == 3.5
    assert policy.for_job("shop", "export_legacy").mode == "monitor"
    assert policy.for_job("shop", "export_legacy").owner == "data-eng"
    assert policy.for_job("other", "export_orders").mode == "monitor"  # namespace differs
    assert policy.for_job("shop", "load_orders").owner is None


def test_datasets_get_their_tags_and_freshness() -> None:
    policy = parse_policy(POLICY)
    assert policy.for_dataset("pg", "crm.users").pii == frozenset({"email", "phone"})
    share = policy.for_dataset("pg", "public_share.daily")
    assert share.public
    assert share.freshness == timedelta(hours=26)
    assert not policy.for_dataset("pg", "crm.orders").public


def test_no_policy_means_monitor_mode_for_everything() -> None:
    assert parse_policy("").for_job("any", "job").mode == "monitor"


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (
            '[[job]]\nname = "a"\nmode = "enforced"\n',
            3,
            '[job] mode must be "monitor" or "enforce"',
        ),
        ('[[dataset]]\nname = "x"\n\nfreshness = "soon"\n', 4, "[dataset] freshness 'soon' is not"),
        ('[[job]]\nnme = "x"\n', 2, "[job] nme is not a known key"),
        ('[[job]]\nname = "x"\nschedule = "daily"\n', 3, "is not a cron expression of 5 fields"),
        ("[[job]]\nsensitivity = -1\n", 2, "[job] sensitivity must be a positive number"),
        ('[[dataset]]\npii = "email"\n', 2, "[dataset] pii must be a list of column names"),
        ('[[dataset]]\npublic = "yes"\n', 2, "[dataset] public must be true or false"),
        ("[polcy]\nx = 1\n", 1, "unknown section 'polcy'"),
        ('[[job]\nname = "x"\n', 1, "not valid TOML"),
    ],
)
def test_an_invalid_policy_is_refused_with_line_and_reason(
    text: str, line: int, reason: str
) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(text, source="ops/pipewarden.toml")
    assert refused.value.line == line
    assert reason in str(refused.value)
    assert str(refused.value).startswith(f"ops/pipewarden.toml:{line}: ")


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("26h", timedelta(hours=26)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_durations(text: str, span: timedelta) -> None:
    assert parse_duration(text) == span


def test_a_duration_without_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration("30")
