"""Run one registration in its own process: ``python -m btk.preprocess.registration_worker JOB_JSON PARENT_PID``.

The worker ends with its parent (the preprocessing process), even when the parent is killed with ``kill -9``:
otherwise it would go on writing into the staging folder of a dead run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from btk.errors import BtkError
from btk.lifetime import die_with_parent
from btk.preprocess.registration import RegistrationSettings, register_in_this_process


def main(job_json: str, parent: int) -> int:
    """Register as described by ``job_json``; on failure print the BtkError as JSON on standard error, return 2."""
    die_with_parent(parent)
    job = json.loads(job_json)
    try:
        register_in_this_process(
            Path(job["fixed"]),
            Path(job["moving"]),
            Path(job["transform_path"]),
            RegistrationSettings(**job["settings"]),
        )
    except BtkError as error:
        path = None if error.path is None else str(error.path)
        print(
            json.dumps({"kind": type(error).__name__, "problem": error.problem, "path": path, "hint": error.hint}),
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
