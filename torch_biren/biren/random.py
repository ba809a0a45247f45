"""Random number generators of biren devices (torch.manual_seed seeds them all)."""

from .. import _C
from .device import _index, device_count


def _gen(device=None):
    return _C._default_generator(_index(device))


def default_generators():
    return tuple(_C._default_generator(i) for i in range(device_count()))


def get_rng_state(device="biren"):
    return _gen(device).get_state()


def get_rng_state_all():
    return [_C._default_generator(i).get_state() for i in range(device_count())]


def set_rng_state(new_state, device="biren"):
    _gen(device).set_state(new_state.clone() if new_state.device.type == "cpu" else new_state.cpu())


def set_rng_state_all(new_states):
    for i, state in enumerate(new_states):
        set_rng_state(state, i)


def manual_seed(seed):
    _gen().manual_seed(int(seed))


def manual_seed_all(seed):
    for i in range(device_count()):
        _C._default_generator(i).manual_seed(int(seed))


def seed():
    _gen().seed()


def seed_all():
    s = _gen().seed()
    for i in range(device_count()):
        _C._default_generator(i).manual_seed(s)


def initial_seed():
    return _gen().initial_seed()
