"""Streams and events. Streams order work on the simulated timeline; events record its clock, so
Event.elapsed_time returns simulated milliseconds."""

import torch

from .. import _C
from .device import _index


class Stream(torch.Stream):
    """A biren stream: its own simulated clock on one device."""

    def __new__(cls, device=None, priority=0, **kwargs):
        if kwargs:  # wrapping an existing stream (stream_id, device_index, device_type)
            return super().__new__(cls, **kwargs)
        return super().__new__(cls, device=torch.device("biren", _index(device)), priority=priority)

    def __enter__(self):
        self.__dict__.setdefault("_ctx", []).append(_select(self))
        return self

    def __exit__(self, *exc):
        _restore(*self._ctx.pop())
        return False

    def wait_event(self, event):
        _base(self).wait_event(_unwrap(event))

    def wait_stream(self, stream):
        _base(self).wait_stream(_base(stream))

    def record_event(self, event=None):
        event = event if event is not None else Event()
        event.record(self)
        return event

    def __repr__(self):
        return f"<torch.biren.Stream device=biren:{self.device_index} id={self.stream_id}>"


class Event:
    """A biren event; with enable_timing=True, elapsed_time() gives simulated ms.

    Wraps a torch.Event (whose C methods accept only their exact type) and unwraps where needed."""

    def __init__(self, enable_timing=False, blocking=False, interprocess=False, external=False):
        # external: how CUDA graphs capture an event; biren has no graph capture, so it changes nothing
        self._event = torch.Event(
            torch.device("biren"), enable_timing=enable_timing, blocking=blocking, interprocess=interprocess
        )

    def record(self, stream=None):
        self._event.record(_base(stream if stream is not None else current_stream()))

    def wait(self, stream=None):
        self._event.wait(_base(stream if stream is not None else current_stream()))

    def query(self):
        return self._event.query()

    def synchronize(self):
        self._event.synchronize()

    def elapsed_time(self, end_event):
        return self._event.elapsed_time(end_event._event if isinstance(end_event, Event) else end_event)

    def __repr__(self):
        return f"<torch.biren.Event {self._event!r}>"


def _base(stream):
    return torch.Stream(stream_id=stream.stream_id, device_index=stream.device_index, device_type=stream.device_type)


def _unwrap(event):
    return event._event if isinstance(event, Event) else event


def _wrap(s):
    return Stream(stream_id=s.stream_id, device_index=s.device_index, device_type=s.device_type)


def current_stream(device=None):
    return _wrap(torch.accelerator.current_stream(torch.device("biren", _index(device))))


def default_stream(device=None):
    idx = _index(device)
    return Stream(stream_id=0, device_index=idx, device_type=current_stream(idx).device_type)


def set_stream(stream):
    """Makes `stream` current on its device and its device current, as torch.cuda.set_stream does."""
    if stream is not None:
        torch.accelerator.set_stream(stream)


def _select(s):
    """Enters a stream context as CUDA's does: the stream's device becomes current for the block.
    Returns what _restore needs to put back: the current device, and the stream the target device had."""
    saved = _C._get_device(), current_stream(s.device_index)
    set_stream(s)
    return saved


def _restore(device, stream_before):
    set_stream(stream_before)
    _C._set_device(device)


class stream:
    """Context manager selecting a stream (None: no change), like torch.cuda.stream."""

    def __init__(self, s):
        self.s = s
        self.saved = None

    def __enter__(self):
        if self.s is not None:
            self.saved = _select(self.s)
        return self.s

    def __exit__(self, *exc):
        if self.saved is not None:
            _restore(*self.saved)
            self.saved = None
        return False
