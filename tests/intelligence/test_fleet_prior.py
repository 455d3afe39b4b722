"""The fleet prior of the learning evidence (pure): a single cluster's evidence is unchanged, the other clusters'
record weighs as at most ``prior_cases`` cases at its own success rate."""

from __future__ import annotations

from kubernaut.intelligence.feedback import _evidence, _fleet_prior
from kubernaut.models.stats import wilson_lower_bound
from kubernaut.storage.learning import OutcomeCounts


def counts(effective: int, ineffective: int) -> OutcomeCounts:
    return OutcomeCounts(action="restart_pods", executions=effective + ineffective, effective=effective,
                         ineffective=ineffective, score_sum=0.0, scored=0, recovery_s_sum=0.0, recoveries=0,
                         last_at=None)


def test_no_other_cluster_leaves_the_evidence_as_it_was() -> None:
    own = counts(4, 1)
    ev = _evidence("S:Deployment", "restart_pods", own)
    assert _fleet_prior(ev, own, own, 2.0) == ev
    assert _fleet_prior(ev, own, own, 0.0) == ev


def test_the_others_weigh_at_most_prior_cases_at_their_rate() -> None:
    own, total = counts(4, 0), counts(5, 30)  # others: 1/31
    ev = _fleet_prior(_evidence("S:Deployment", "restart_pods", own), own, total, 2.0)
    assert (ev.successes, ev.cases, ev.fleet_cases) == (4, 4, 2.0)
    assert abs(ev.fleet_successes - 2.0 / 31) < 1e-3
    assert abs(ev.lower_bound - wilson_lower_bound(4 + 2.0 / 31, 6)) < 1e-4
    few = _fleet_prior(_evidence("S:Deployment", "restart_pods", None), None, counts(1, 0), 2.0)
    assert (few.cases, few.fleet_cases, few.fleet_successes) == (0, 1.0, 1.0)
