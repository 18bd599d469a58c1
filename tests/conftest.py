"""Fixtures for the whole suite, from the importable helper package :mod:`tests.support`."""

pytest_plugins = [
    "tests.support.data",  # fusion_case
    "tests.support.preprocess",  # preprocessed_tcga (SRI24), _mni and _native: real preprocessing runs
    "tests.support.docker_engine",  # docker_engine, base_image, fakeseg_image
]
