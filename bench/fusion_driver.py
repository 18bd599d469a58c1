"""One timed fusion inside this process, for ``bench/fusion.py``.

    python bench/fusion_driver.py '["btk" | "btk-compat" | "brats-toolkit" | "labelfusion", METHOD, [PATHS], OUTPUT]'

Run by the Python of btk's, BraTS Toolkit's or LabelFusion's virtual environment, so it imports nothing but
the standard library before it knows which tool it drives. Times one call that reads the candidates, fuses
them and writes the result (the imports are done before the clock starts):

- ``btk``: ``Fusionator().fuse(paths, method, agreement=False).save(output)`` (default flavour);
- ``btk-compat``: the same with ``flavour="brats-toolkit"`` (BraTS Toolkit's results);
- ``brats-toolkit``: ``brats_toolkit.fusionator.Fusionator().fuse(paths, output, method)``;
- ``labelfusion``: ``SimpleITK.ReadImage(path, sitkUInt8)`` for each candidate (as its ``fusion_run`` does),
  ``LabelFusion.wrapper.fuse_images(images, name, [0, 1, 2, 4])`` and ``SimpleITK.WriteImage``, where
  ``name`` is ``itkvoting`` (SimpleITK's LabelVotingImageFilter) for mav, ``staple`` (MultiLabelSTAPLE) and
  ``simple``.

Prints one line ``BENCH {"seconds", "cpu_seconds", "rss_growth_mb"}``: wall and CPU time (user + system,
all threads) of the call, and how far the call raised the process's peak resident memory above what it
held before.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable

#: LabelFusion's name for each method (its mav is SimpleITK's LabelVotingImageFilter).
LABELFUSION_METHODS = {"mav": "itkvoting", "staple": "staple", "simple": "simple"}
#: The BraTS 2017-2021 labels of the real candidates, which LabelFusion's SIMPLE needs to be told.
BRATS_LABELS = [0, 1, 2, 4]


def fusion_call(tool: str, method: str, paths: list[str], output: str) -> Callable[[], object]:
    """The call to time, with the tool's modules imported."""
    if tool in ("btk", "btk-compat"):
        from btk.fusion import Fusionator

        fusionator = Fusionator(flavour="brats-toolkit" if tool == "btk-compat" else "default")
        return lambda: fusionator.fuse(paths, method, agreement=False).save(output, force=True)
    if tool == "brats-toolkit":
        from brats_toolkit.fusionator import Fusionator

        fusionator = Fusionator(verbose=False)
        return lambda: fusionator.fuse(paths, output, method=method)
    if tool == "labelfusion":
        import SimpleITK as sitk
        from LabelFusion.wrapper import fuse_images

        def run() -> None:
            images = [sitk.ReadImage(path, sitk.sitkUInt8) for path in paths]
            sitk.WriteImage(fuse_images(images, LABELFUSION_METHODS[method], BRATS_LABELS), output)

        return run
    raise SystemExit(f"unknown tool {tool!r}")


def resident_mb() -> float:
    """The resident memory of this process now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    tool, method, paths, output = json.loads(sys.argv[1])
    call = fusion_call(tool, method, paths, output)
    before_mb = resident_mb()
    started, started_cpu = time.perf_counter(), cpu_seconds()
    call()
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - started_cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    growth_mb = max(peak_mb - before_mb, 0.0)
    print("BENCH" + json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rss_growth_mb": growth_mb}))


if __name__ == "__main__":
    main()
