"""The runs added for issue 13 item 5 (published_runs.ADDED): sourced data that project() accepts;
their errors are reported (benchmarks), not asserted."""

import pytest

from torch_biren.projection import published_runs as P
from torch_biren.projection.models import resolve


@pytest.mark.parametrize("entry", P.ADDED, ids=lambda e: e.name)
def test_added_runs_are_sourced_and_projectable(entry):
    assert entry.source and entry.setup and entry.figure > 0
    assert entry.unit in ("TFLOP/s per GPU", "tokens/s per GPU")
    assert (entry.flops is not None) == (entry.unit == "TFLOP/s per GPU")
    resolve(entry.kwargs["model"])  # a catalogue model


def test_project_error_of_the_smallest_added_run():
    got, want, err, r = P.project_error(P.ADDED[0])  # BLOOM-176B on 384 A100
    assert want == 150 and err == pytest.approx(got / 150 - 1) and r.plan.cards == 384
