"""A clean process exit after backward passes on biren.

The autograd engine runs biren backward passes on its own device thread, which can hold the last
reference to a finished graph. If it lets go while the interpreter finalizes, the graph's Python
nodes cannot take the GIL and the process aborts ("terminate called without an active exception";
seen in about 1 in 4 DDP runs). At exit, before finalization, collect garbage on the main thread
and give the device threads a moment to finish what they hold."""

import atexit
import gc
import time


def _quiesce():
    gc.collect()
    time.sleep(0.05)


def install():
    atexit.register(_quiesce)
