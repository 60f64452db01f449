"""Fixtures: the suite runs against real emulator processes over HTTP, optionally through a fault proxy.

Which emulators: ``--emulator moto`` / ``--emulator ministack`` (repeatable), else the comma-separated
``QFAN_TEST_EMULATOR`` variable, else all of them (README's test command runs the suite against both).
Each chosen emulator is started once per session and shared, so tests must use ``unique_name()`` queues.

Which transports the apps from ``make_app`` use for the per-message SQS calls: ``--transport fast`` /
``--transport botocore`` (repeatable), else the comma-separated ``QFAN_TEST_TRANSPORT`` variable, else both:
every test that builds its apps with ``make_app`` runs once per transport and emulator. Test modules marked
``one_transport`` (features above the transport: Lambda, the archive sink, flow control, idempotency, long
delays, the process supervisor, worker lifecycle, redrive) run on the first chosen transport only; the plane
contract suite and the core send/receive/worker tests run on both. Test modules marked ``one_emulator`` (real
subprocesses around the library: the supervisor, ``qfan run`` and its endpoints, example scripts) run on the
first chosen emulator only.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from .chaos import report as chaos_report
from .support.emulators import EMULATORS, Emulator, EmulatorName, running_emulator
from .support.proxy import Proxy, running_proxy

if TYPE_CHECKING:
    import qfan

ENV_VAR = "QFAN_TEST_EMULATOR"
TRANSPORT_ENV_VAR = "QFAN_TEST_TRANSPORT"
TRANSPORTS = ("fast", "botocore")  # qfan's own tuple, not imported: collection must not import the library


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--emulator",
        action="append",
        choices=EMULATORS,
        help=f"run against this emulator (repeatable; default: ${ENV_VAR}, comma-separated, else all)",
    )
    parser.addoption(
        "--transport",
        action="append",
        choices=TRANSPORTS,
        help=f"make_app apps use this transport (repeatable; default: ${TRANSPORT_ENV_VAR}, else both)",
    )
    parser.addoption(
        "--chaos-size",
        choices=chaos_report.SCALES,
        help="size of the chaos suite (tests/chaos): ci (reduced, the default) or full "
        "(default: $QFAN_CHAOS_SCALE, else ci)",
    )


def chosen_transports(config: pytest.Config) -> list[str]:
    """The transports ``make_app`` builds apps on, from the command line, else the environment, else both."""
    chosen: list[str] | None = config.getoption("--transport")
    if not chosen:
        chosen = [t.strip() for t in os.environ.get(TRANSPORT_ENV_VAR, "").split(",") if t.strip()]
    unknown = sorted(set(chosen) - set(TRANSPORTS))
    if unknown:
        raise pytest.UsageError(
            f"{TRANSPORT_ENV_VAR}: unknown transport(s) {unknown}; choose from {TRANSPORTS}"
        )
    return list(dict.fromkeys(chosen)) or list(TRANSPORTS)


def chaos_scale(config: pytest.Config) -> chaos_report.Scale:
    """The chaos suite's scale, from the command line, else the environment, else ``ci``."""
    chosen = config.getoption("--chaos-size") or os.environ.get("QFAN_CHAOS_SCALE", "ci")
    if chosen not in chaos_report.SCALES:
        raise pytest.UsageError(f"QFAN_CHAOS_SCALE: {chosen!r} is not one of {chaos_report.SCALES}")
    return cast(chaos_report.Scale, chosen)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The chaos suite's summary table (when its scenarios ran), and its JSON beside pytest's temp files."""
    rows = chaos_report.ROWS
    if not rows:
        return
    scale = chaos_scale(config)
    target = os.environ.get("QFAN_CHAOS_REPORT")
    basetemp: Path = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    path = Path(target) if target else basetemp / "chaos-summary.json"
    chaos_report.write_json(rows, path, scale)
    terminalreporter.section(f"chaos summary ({scale} size, {chaos_report.transport()} transport)")
    terminalreporter.write_line(chaos_report.table(rows))
    terminalreporter.write_line(f"details (fault kinds, RSS curve): {path}")


def chosen_emulators(config: pytest.Config) -> list[EmulatorName]:
    """The emulators this run uses, from the command line, else the environment, else all."""
    chosen: list[str] | None = config.getoption("--emulator")
    if not chosen:
        chosen = [name.strip() for name in os.environ.get(ENV_VAR, "").split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(EMULATORS))
    if unknown:
        raise pytest.UsageError(f"{ENV_VAR}: unknown emulator(s) {unknown}; choose from {list(EMULATORS)}")
    return [cast(EmulatorName, name) for name in dict.fromkeys(chosen)] or list(EMULATORS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests that (indirectly) use ``emulator`` run once per chosen emulator; the others run once."""
    if "emulator_name" in metafunc.fixturenames:
        emulators = chosen_emulators(metafunc.config)
        if metafunc.definition.get_closest_marker("one_emulator"):
            emulators = emulators[:1]  # a process around the library: the library is tested on both
        metafunc.parametrize("emulator_name", emulators, scope="session")
    if "transport" in metafunc.fixturenames:
        transports = chosen_transports(metafunc.config)
        if metafunc.definition.get_closest_marker("one_transport"):
            transports = transports[:1]  # behaviour above the transport: once is enough
        metafunc.parametrize("transport", transports)


@pytest.fixture(scope="session")
def emulator(emulator_name: EmulatorName) -> Iterator[Emulator]:
    """The emulator process for this session (one at a time; pytest groups the tests by emulator)."""
    with running_emulator(emulator_name) as running:
        yield running


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may use this machine's credentials, profiles, config files, endpoints or metadata service."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def endpoint_url(emulator: Emulator) -> str:
    """The session emulator's endpoint, ``http://127.0.0.1:<port>``."""
    return emulator.endpoint_url


@pytest.fixture
def proxy(emulator: Emulator) -> Iterator[Proxy]:
    """A fresh recording, fault-injecting proxy in front of the session emulator (``proxy.endpoint_url``)."""
    with running_proxy(emulator.endpoint_url) as running:
        yield running
    if running.errors:
        pytest.fail(f"the test proxy itself failed: {running.errors!r}")


@pytest.fixture
def unique_name() -> Callable[..., str]:
    """``unique_name(prefix="q", *, fifo=False)``: a queue name no other test in the session uses."""

    def make(prefix: str = "q", *, fifo: bool = False) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        return f"{name}.fifo" if fifo else name

    return make


@pytest.fixture
def make_app(endpoint_url: str, transport: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., qfan.App]:
    """Apps pointed at the emulator, on this test's transport; fast retries so fault tests don't wait long.

    ``QFAN_TRANSPORT`` is set too, so apps the test starts in worker processes use the same transport.
    """
    import qfan  # here, not at the top: the emulator and proxy tests must not depend on the library

    monkeypatch.setenv("QFAN_TRANSPORT", transport)

    def make(*, endpoint_url: str = endpoint_url, **kwargs: Any) -> qfan.App:
        kwargs.setdefault("retry", qfan.RetryPolicy(attempts=5, initial_wait=0.01, max_wait=0.2))
        kwargs.setdefault("transport", transport)
        return qfan.App("tests", endpoint_url=endpoint_url, region="us-east-1", **kwargs)

    return make
