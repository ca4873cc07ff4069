"""A stand-in ``pynvml`` module for subprocess tests: put this folder first on PYTHONPATH.

It exposes the default fake scenario (two GPUs, one with MIG) as module-level functions, so code
that does ``import pynvml`` gets it exactly as it would get NVIDIA's module.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.fakes import fake_nvml as _fake

_instance = _fake.two_gpus_one_with_mig()
NVMLError = _fake.NVMLError
for _name in dir(_fake):
    if _name.startswith("NVML_"):
        globals()[_name] = getattr(_fake, _name)
for _name in dir(_instance):
    if _name.startswith("nvml"):
        globals()[_name] = getattr(_instance, _name)
