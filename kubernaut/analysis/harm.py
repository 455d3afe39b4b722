"""First, do no harm: the last check every proposal passes, whoever made it (rules, learning, LLM).

A mutating action is proposed only when the diagnosis holds a *structured* finding that the action
helps with (its ``helps_when`` in the catalog) about the action's target, and no finding that makes it
harmful there (``harmful_when``). Out of scope means nothing is proposed that the executor would
refuse. Otherwise the answer becomes ``notify_only`` — or ``collect_diagnostics`` when the evidence
is incomplete — carrying the findings, so the human sees why nothing was done and what was recommended.
"""

from __future__ import annotations

from kubernaut.analysis.facts import Situation
from kubernaut.execution.catalog import CatalogError, get_action
from kubernaut.models.analysis import Alternative, AnalysisResult
from kubernaut.models.finding import Finding, FindingKind
from kubernaut.models.resource import ResourceRef

K = FindingKind
# Findings that explain the incident (shown first when the answer is to tell a human).
_NOT_A_CAUSE = frozenset({K.CONTEXT_UNKNOWN, K.GITOPS_MANAGED, K.HELM_MANAGED, K.ROLLOUT_RECENT, K.PVC_EXPANDABLE,
                          K.PVC_NOT_EXPANDABLE, K.OUT_OF_SCOPE})


def relates(finding: Finding, target: ResourceRef, situation: Situation) -> bool:
    """Whether a finding is about the action's target: the object itself, or the same workload's objects."""
    refs = {r for r in (finding.cause, finding.subject) if r is not None}
    if target in refs:
        return True
    if target.cluster_scoped:
        return False
    family = situation.context.related_refs() | {situation.workload, situation.incident_target}
    return target in family and bool(refs & family)


def primary_cause(findings: list[Finding]) -> Finding | None:
    return next((f for f in findings if f.kind not in _NOT_A_CAUSE), None)


def screen(result: AnalysisResult, situation: Situation) -> AnalysisResult:
    findings = situation.findings
    try:
        spec = get_action(result.action)
    except CatalogError:
        return result
    if not spec.mutates:
        return result
    target = result.target
    scope = next((f for f in findings if f.kind is K.OUT_OF_SCOPE), None)
    if scope is not None:
        return _refuse(result, situation, f"out of scope: {scope.summary.removeprefix('Out of scope: ')}",
                       scope, out_of_scope=True)
    harmful = next((f for f in findings if f.kind in spec.harmful_when and relates(f, target, situation)
                    and not _proposable_in_git(f, situation)), None)
    if harmful is not None:
        return _refuse(result, situation, f"{harmful.kind.value}: {harmful.summary}", harmful)
    support = next((f for f in findings if f.kind in spec.helps_when and f.justifies
                    and relates(f, target, situation)), None)
    if support is None:
        needed = ", ".join(k.value for k in spec.helps_when) or "a human's decision (never proposed automatically)"
        return _refuse(result, situation, f"no evidence that it helps here (it needs: {needed})", None)
    result.justified_by = support.kind.value
    result.reasoning.append(f"justified by {support.kind.value}: {support.summary}")
    result.reasoning.extend(f"evidence: {e}" for e in support.evidence[:3])
    return result


def _proposable_in_git(finding: Finding, situation: Situation) -> bool:
    """GitOps ownership harms a live change only: with a repository configured for the owner (fact
    gitops.proposable) the orchestrator makes the change in Git (kubernaut/orchestration/gitops_flow.py)."""
    return finding.kind is K.GITOPS_MANAGED and situation.facts.get("gitops.proposable") is True


def _refuse(result: AnalysisResult, situation: Situation, why: str, finding: Finding | None, *,
            out_of_scope: bool = False) -> AnalysisResult:
    findings = situation.findings
    cause = primary_cause(findings)
    unknown = any(f.kind is K.CONTEXT_UNKNOWN for f in findings)
    # Evidence missing — sections not read, or a crash whose cause only its logs can tell — while the
    # cluster is reachable and the target ours: gather it for the human instead of guessing.
    gather = (not out_of_scope and situation.context.cluster_available
              and ((unknown and cause is None) or (cause is not None and cause.kind is K.CRASH)))
    action = "collect_diagnostics" if gather else "notify_only"
    # The diagnosis, not the refused rule's guess, explains the incident to the human.
    if out_of_scope and finding is not None:
        root_cause = finding.summary
    elif cause is not None:
        root_cause = cause.summary + (f" Evidence: {cause.evidence[0]}" if cause.evidence else "")
    else:
        root_cause = result.root_cause
    recommended = f"Recommended: {result.action} on {result.target}, not proposed: {why}."
    lines = "; ".join(f"{f.kind.value}: {f.summary}" for f in findings if f.kind is not K.CONTEXT_UNKNOWN)[:1200]
    parameters: dict[str, object] = {}
    if action == "notify_only":
        parameters["reason"] = f"{root_cause} {recommended} Findings: {lines or 'none'}"[:2000]
    target = result.target
    if out_of_scope or (target.cluster_scoped and target.kind != "Node"):
        target = situation.incident_target
    return AnalysisResult(
        incident_id=result.incident_id, action=action, parameters=parameters, target=target,
        confidence=result.confidence, engine=result.engine, root_cause=root_cause[:2000],
        alternatives=[Alternative(action=result.action, reason=f"not proposed: {why}"[:300], score=result.confidence),
                      *[a for a in result.alternatives if a.action != result.action]],
        rule_id=f"{result.rule_id or result.engine}+harm", reasoning=[*result.reasoning, recommended],
        fallback_reason=result.fallback_reason, llm=result.llm, flags=result.flags, facts=result.facts,
        findings=result.findings,
        justified_by=(finding or cause).kind.value if (finding or cause) is not None else None,
    )
