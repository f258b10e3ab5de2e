"""`pipewarden demo`: where the story is told (an embedded collector, or one at --url)."""

from __future__ import annotations

import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import quote

from collector.demo import embedded, policy_path, report
from collector.demo.cast import Cast
from collector.demo.client import Api, CollectorError
from collector.demo.shim import Shim
from collector.demo.story import Narrator, Story

NAMESPACE = "demo"
EMBEDDED_WAIT = 90.0  # the embedded evaluator ticks every second
REMOTE_WAIT = 150.0  # a collector's evaluator may tick every 30 s (PIPEWARDEN_EVALUATOR_INTERVAL)


@dataclass(frozen=True)
class Options:
    url: str | None
    directory: Path | None
    port: int
    serve: bool
    api_key: str = ""


def run(options: Options, echo: Callable[[str], None]) -> int:
    """Tell the story; 0 when it went as told, 1 when something did not."""
    say = Narrator(echo)
    directory = prepare(options.directory)
    collector = None
    if options.url is None:
        say.text(f"Starting a collector with the demo policy ({policy_path()}) …")
        collector = embedded.start(directory, options.port)
        api = Api(collector.url)
        namespace = NAMESPACE
        say.text(f"Collector: {collector.url}  store: {directory / embedded.STORE}")
    else:
        api = Api(options.url.rstrip("/"), options.api_key)
        healthy(api)
        namespace = free_namespace(api)
        say.text(
            f"Collector: {api.url} (namespace {namespace}). The enforced gates and the SLA\n"
            f"need the demo policy there: PIPEWARDEN_POLICY={policy_path()} pipewarden serve"
        )
    say.text(f"Files (scripts' outputs, the shim's spool): {directory}")
    cast = Cast(namespace, directory)
    story = Story(
        api=api,
        cast=cast,
        shim=Shim(cast, api.url, options.api_key),
        say=say,
        evaluator_wait=EMBEDDED_WAIT if collector else REMOTE_WAIT,
        strict_policy=collector is not None,
    )
    try:
        started = time.monotonic()
        found = story.tell()
        report.findings(say, found, api.url, namespace)
        report.gates(say, story.gates, api.url, namespace)
        report.kpis(say, api)
        report.links(say, api.url, namespace, cast.warehouse)
        report.monitoring(say, api.url)
        for note in story.notes:
            say.text(f"\nNote: {note}")
        for surprise in story.surprises:
            say.text(f"\n!! {surprise}")
        say.text(f"\nThe story took {time.monotonic() - started:.0f} s.")
        if collector is not None:
            serve_until_interrupted(say, collector, directory, options.serve)
    finally:
        if collector is not None:
            collector.stop()
    return 1 if story.surprises else 0


def prepare(directory: Path | None) -> Path:
    """The demo's folder: new, or empty; never one holding an earlier demo's data."""
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="pipewarden-demo-"))
    if directory.exists() and any(directory.iterdir()):
        raise CollectorError(
            f"{directory} is not empty (an earlier demo?): remove it or choose another --dir"
        )
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def healthy(api: Api) -> None:
    answer = api.request("GET", "/healthz")
    if answer.status != 200:
        raise CollectorError(f"{api.url}/healthz answered HTTP {answer.status}: {answer.body}")


def free_namespace(api: Api) -> str:
    """`demo`, or `demo-2`, `demo-3` … when an earlier demo already lives on the collector."""
    for number in range(1, 1000):
        name = NAMESPACE if number == 1 else f"{NAMESPACE}-{number}"
        answer = api.request("GET", f"/api/v1/namespaces/{quote(name, safe='')}/jobs?limit=1")
        if answer.status == 404 or (answer.status == 200 and not answer.body["jobs"]):
            return name
    raise CollectorError("namespaces demo … demo-999 are all taken on that collector")


def serve_until_interrupted(
    say: Narrator, collector: embedded.Embedded, directory: Path, serve: bool
) -> None:
    again = (
        f"PIPEWARDEN_POLICY={policy_path()} pipewarden serve "
        f"--database-url sqlite:///{(directory / embedded.STORE).absolute()}"
    )
    if not serve:
        say.text(f"\nThe store stays in {directory}; to serve it again:\n  {again}")
        return
    say.text(f"\nServing {collector.url} until Ctrl-C (the store stays in {directory}).")
    # Ctrl-C and SIGTERM end the serving, even where SIGINT came ignored (a background job).
    previous = {stop: signal.signal(stop, _interrupt) for stop in (signal.SIGINT, signal.SIGTERM)}
    try:
        while collector.alive():
            time.sleep(0.2)
    except KeyboardInterrupt:
        say.text(f"\nStopped. To serve the demo's store again:\n  {again}")
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt
