"""A rank that dies or hangs: the others fail within the process-group timeout, with a message that
names the collective and the missing rank, and the group refuses further work."""

import json

import pytest

from . import launch


def _error(kind):
    procs = launch.start("fault", world=2, args=[kind, 3])
    survivor = launch.finish(procs, timeout=45, only=[0])[0]  # the hung rank is killed afterwards
    lines = [json.loads(x[7:]) for x in survivor.out.splitlines() if x.startswith("RESULT ")]
    assert lines, survivor.err[-3000:]
    return lines


@pytest.mark.parametrize("kind,why", [("die", "the process died"), ("hang", "within the 3 s timeout")])
def test_missing_rank_is_named(kind, why):
    first, again = _error(kind)
    err = first["error"]
    assert first["type"] == "DistBackendError"
    assert "all_reduce #2" in err and "Rank 1 did not join all_reduce" in err and why in err, err
    assert first["seconds"] < 3 + 2 + 3  # timeout + report grace + slack on a loaded machine
    assert "unusable" in again["again"]
