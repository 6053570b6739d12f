"""The start-up GC pause: off inside, what was made inside frozen after, the caller's state restored."""

from __future__ import annotations

import gc

from fluxserve.startup_gc import collector_paused


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector could ever free it


def test_the_collector_is_off_inside_and_back_on_after_with_the_new_objects_frozen() -> None:
    assert gc.isenabled()
    frozen_before = gc.get_freeze_count()
    with collector_paused():
        assert not gc.isenabled()
        kept = [_Node() for _ in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen_before + len(kept)
    collected = {id(thing) for thing in gc.get_objects()}  # every generation but the frozen one
    assert not collected.intersection(id(node) for node in kept)


def test_a_collector_the_caller_had_turned_off_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_comes_back_when_the_start_up_fails() -> None:
    try:
        with collector_paused():
            raise RuntimeError("import failed")
    except RuntimeError:
        pass
    assert gc.isenabled()
