"""The benchmark harness still runs: every scenario and client at a tiny size, delivery verified by id.

No timing assertions: the numbers mean nothing here. Clients whose library is not installed (the ``bench``
extra is not part of ``.[test]``) report "not installed" instead of running; qfan, aiobotocore and boto3
(which moto brings) always run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .support.emulators import Emulator

ROOT = Path(__file__).resolve().parent.parent
ALWAYS_RUN = {
    "qfan",
    "qfan-botocore",
    "qfan-send",
    "qfan-otel",
    "aiobotocore",
    "boto3-naive",
    "boto3-batched",
}


@pytest.fixture
def harness() -> object:
    sys.path.insert(0, str(ROOT))
    try:
        import benchmarks.__main__ as harness
    finally:
        sys.path.remove(str(ROOT))
    return harness


def test_every_scenario_and_client_at_tiny_size(emulator: Emulator, harness: object, tmp_path: Path) -> None:
    if emulator.name == "moto":
        pytest.skip("one emulator is enough for the harness smoke test (moto's calls are O(queue length))")
    argv = ["--endpoint-url", emulator.endpoint_url, "--out", str(tmp_path), "--messages", "30"]
    argv += ["--fanout-messages", "10", "--rpc-messages", "6", "--offload-messages", "3", "--timeout", "60"]

    exit_code = harness.main(argv)  # type: ignore[attr-defined]

    document = json.loads((tmp_path / "results.json").read_text())
    cells = {(c["client"], c["scenario"]): c for c in document["results"]}
    assert len(cells) == len(document["clients"]) * len(document["scenarios"])
    for (client, scenario), cell in cells.items():
        assert cell["status"] in ("ok", "n/a"), (client, scenario, cell["reason"])
        if cell["status"] == "n/a":
            assert cell["reason"], (client, scenario)
            continue
        assert (cell["lost"], cell["duplicates"]) == (0, 0), (client, scenario)
        assert cell["left_in_queue"] in (None, 0), (client, scenario)
        assert cell["msgs_per_s"] > 0
        assert cell["cpu_us_per_msg"] > 0
    for client in ALWAYS_RUN:
        for scenario in ("publish", "consume", "e2e"):
            if (client, scenario) != ("qfan-send", "consume") and (client, scenario) != ("qfan-send", "e2e"):
                assert cells[client, scenario]["status"] == "ok", (client, scenario)
    for scenario in ("fanout", "rpc", "offload"):  # qfan runs every scenario the harness, on both transports
        for client in ("qfan", "qfan-botocore"):
            assert cells[client, scenario]["status"] == "ok", (
                client,
                scenario,
                cells[client, scenario]["reason"],
            )
    assert exit_code == 0
    markdown = (tmp_path / "results.md").read_text()
    for client in document["clients"]:
        assert f"| {client} |" in markdown


def test_python_m_benchmarks_runs_from_the_checkout() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--server" in result.stdout
    assert "fauxqs" in result.stdout
