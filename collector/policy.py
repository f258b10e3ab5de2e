"""Loading the policy file for the collector, and reloading it on SIGHUP."""

from __future__ import annotations

import logging
from pathlib import Path

from collector.settings import Settings
from gates.policy import Policy, PolicyError, parse_policy

log = logging.getLogger(__name__)


def load_policy(path: str, explicit: bool) -> Policy:
    """The policy at `path`; none (all jobs in monitor mode) when the default file is absent.

    Raises PolicyError when the file is invalid, or was named explicitly and is missing.
    """
    file = Path(path)
    if not file.exists():
        if explicit:
            raise PolicyError(path, None, "policy file not found")
        return Policy()
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(path, None, f"cannot be read: {error}") from None
    return parse_policy(text, source=path)


class PolicyHolder:
    """The policy in force; `reload` swaps it only when the new file is valid."""

    def __init__(self, settings: Settings) -> None:
        self.path = settings.policy
        # The default file is optional; a file named in the settings must exist.
        self.explicit = settings.policy != Settings().policy
        self.current = load_policy(self.path, self.explicit)

    def reload(self) -> bool:
        try:
            self.current = load_policy(self.path, self.explicit)
        except PolicyError as error:
            log.error("policy not reloaded, the previous one stays in force: %s", error)
            return False
        log.info("policy reloaded from %s", self.path)
        return True
