"""nmc: a compiler and emulator for neuromorphic chips (TrueNorth-, Loihi-, BrainScaleS-2-style).

The Python API (see :mod:`nmc.api`)::

    import nmc
    compiled = nmc.compile("model.json", target="loihi")   # a path, a nir.NIRGraph or an ir.Graph
    result = compiled.run(spikes, labels=labels)           # spikes: (batch, steps, inputs)
    result.accuracy, result.energy_per_sample_j, compiled.utilization["cores_used"]
"""

import os
import sys
from importlib.metadata import PackageNotFoundError, version

if "numpy" not in sys.modules:
    # The emulator runs a batch on its own threads, one per core; OpenBLAS's thread pool on top
    # of them made small matrix products 10-100x slower on a loaded 2-core machine (the digits
    # MLP evaluated 3-10x slower). Only a default: an explicit setting wins, and a process that
    # loaded numpy before nmc keeps its own.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

try:
    __version__ = version("nmc")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+src"

from nmc.api import Compiled, Results, compile, load, load_image, run  # noqa: E402
from nmc.errors import NmcError  # noqa: E402

__all__ = [
    "Compiled", "NmcError", "Results", "__version__", "compile", "load", "load_image", "run",
]
