"""One client process: ``python -m benchmarks.child JOB_JSON`` runs one scenario and prints its Outcome
as the last line of stdout. The harness measures this process from outside too (peak RSS)."""

from __future__ import annotations

import sys
import traceback

from .clients import scenario_function
from .common import Job, NotAvailable, Outcome


def main() -> None:
    job = Job.from_json(sys.argv[1])
    try:
        outcome = scenario_function(job.client, job.scenario)(job)
    except NotAvailable as exc:
        outcome = Outcome(status="n/a", reason=str(exc))
    except ModuleNotFoundError as exc:  # a benchmark-only dependency, e.g. in CI, which installs only .[test]
        outcome = Outcome(status="n/a", reason=f"{exc.name} is not installed (pip install -e '.[bench]')")
    except Exception as exc:
        traceback.print_exc()
        outcome = Outcome(status="error", reason=f"{type(exc).__name__}: {exc}"[:300])
    sys.stdout.write("\n" + outcome.to_json() + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
