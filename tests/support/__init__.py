"""Helpers of btk's test suite and benchmarks, importable as ``tests.support.<module>``.

Modules: :mod:`data` (test data paths, small label maps), :mod:`preprocess` (the TCIA exam, DICOM writing),
:mod:`deid` (identifier-laden DICOM studies), :mod:`docker_engine` (a real engine, base and test images),
:mod:`hostile` (running ``btk`` as a user would and checking what it left), :mod:`pipeline`,
:mod:`segment`, :mod:`unet` and :mod:`lesions` (synthetic lesions in real brains). Fixtures are registered
for the whole suite through ``pytest_plugins`` in ``tests/conftest.py``; benchmarks import the helpers the
same way when run from the repository root as ``python -m bench.<name>``.
"""
