"""Start-up with Python's cyclic garbage collector paused.

A worker imports torch, diffusers and transformers (~700,000 objects) before its first task; the API
process imports FastAPI, SQLAlchemy and pydantic. Every few hundred allocations the collector walks
the objects created so far, so an import of that size pays for several full walks of a heap that
is, by then, nothing but module state that lives as long as the process. Pausing the collector while
starting and then freezing what exists (``gc.freeze``: later collections skip it) saves about half
a second to a second of CPU per worker start (``bench/startup_cpu.py``) and makes each later full
collection cheaper. The price: the few cyclic garbage objects the imports leave (~11,000 for the
worker, a few MB at most) are never reclaimed.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with the cyclic GC off, then freeze everything alive and restore the GC."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
