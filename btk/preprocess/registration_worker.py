"""Run one registration in its own process: ``python -m btk.preprocess.registration_worker JOB_JSON``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from btk.errors import BtkError
from btk.preprocess.registration import RegistrationSettings, register


def main(job_json: str) -> int:
    """Register as described by ``job_json``; print a BtkError on standard error and return 2 on failure."""
    job = json.loads(job_json)
    try:
        register(Path(job["fixed"]), Path(job["moving"]), Path(job["transform_path"]),
                 RegistrationSettings(**job["settings"]))
    except BtkError as error:
        print(error.problem, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
