"""When a collective fails: find out which ranks are missing and say so, never hang silently.

A rank whose transfer failed (a peer's connection closed, or the process group's timeout passed)
writes where it is to the store and gives the other ranks a short grace period to do the same.
Ranks that never report are the suspects: their process died or hangs outside this collective.
The store is the rendezvous store (torchrun's agent or rank 0's TCPStore); when it cannot be reached
either, the message says so instead of waiting.
"""

import time

import torch.distributed as dist

GRACE_S = 2.0  # how long a failed rank waits for the others to report


def _fmt_ranks(ranks):
    ranks = sorted(ranks)
    if not ranks:
        return "none"
    return ", ".join(str(r) for r in ranks)


class Diagnosis:
    """Per process group: the store to report to and the group's global ranks."""

    def __init__(self, store, rank, global_ranks, timeout_s):
        self.store = store
        self.rank = rank  # rank in the group
        self.global_ranks = global_ranks
        self.timeout_s = timeout_s
        self.reported = None

    def _g(self, r):
        return self.global_ranks[r] if r < len(self.global_ranks) else r

    def error(self, what, cause, peers=None):
        """A DistBackendError for a failure of `what` (e.g. 'all_reduce #12 (4.0 KiB float32)').

        peers: the group ranks taking part (all by default; the peer for send/recv)."""
        size = len(self.global_ranks)
        peers = list(range(size)) if peers is None else list(peers)
        me = self._g(self.rank)
        reports, unreachable = self._exchange(what, peers, cause)
        lines = [f"bccl error: {what} failed on rank {me} (group of {size} ranks: {_fmt_ranks(self.global_ranks)})."]
        if unreachable:
            lines.append(f"The rendezvous store could not be reached ({unreachable}): its host "
                         "(rank 0 or the launcher) has probably exited.")
        else:
            missing = [self._g(r) for r in peers if r != self.rank and r not in reports]
            if missing:
                text = str(cause)
                if any(s in text for s in ("reset by peer", "Connection closed", "closed by peer", "Broken pipe", "EOF")):
                    why = "its connection closed: the process died"
                elif "imed out" in text or "imeout" in text:
                    why = (f"not there within the {self.timeout_s:g} s timeout: it hangs or is slow outside this "
                           "collective (a long step, a deadlock, another collective it has not timed out of yet)")
                else:
                    why = "the process died, or hangs outside this collective"
                lines.append(f"Rank{'s' if len(missing) > 1 else ''} {_fmt_ranks(missing)} did not join "
                             f"{what.split()[0]}: {why}.")
            others = {self._g(r): s for r, s in reports.items() if r != self.rank}
            if others:
                lines.append("Ranks that reported: " + "; ".join(f"rank {r} failed in {s}" for r, s in sorted(others.items())))
        lines.append(f"Cause on this rank: {_short(cause)}")
        lines.append(f"(process-group timeout {self.timeout_s:g} s; after this error the group is unusable, as an "
                     "NCCL communicator after an error: destroy_process_group() and restart the job)")
        return dist.DistBackendError("\n".join(lines))

    def _exchange(self, what, peers, cause):
        reports = {}
        try:
            if self.reported is None:
                self.store.set(f"fault/{self.rank}", f"{what}: {_short(cause)[:200]}")
                self.reported = what
            keys = {r: f"fault/{r}" for r in peers}
            deadline = time.monotonic() + GRACE_S
            while True:
                for r, k in keys.items():
                    if r not in reports and self.store.check([k]):
                        reports[r] = self.store.get(k).decode(errors="replace").split(":", 1)[0]
                if len(reports) == len(keys) or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        except Exception as err:  # noqa: BLE001 - the store itself is gone
            return reports, f"{type(err).__name__}: {_short(err)[:160]}"
        return reports, None


def _short(err):
    s = str(err).strip().splitlines()
    # gloo/c10d messages carry an exception raised at ... trace; the first line is the message.
    return s[0] if s else type(err).__name__
