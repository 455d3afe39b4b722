"""pause/resume_gitops_self_heal's scope: ``owner`` acts on the Application/Kustomization/HelmRelease, ``object``
on the fixed object itself with Flux's per-object annotation; each scope takes only its kinds (a clear catalog
error naming the field), and the plan says exactly what is written."""

from __future__ import annotations

import pytest

from kubernaut.execution.catalog import get_action
from kubernaut.execution.catalog.errors import CatalogError
from kubernaut.models.resource import ResourceRef

DEPLOY = ResourceRef(kind="Deployment", name="shop", namespace="prod")
KS = ResourceRef(kind="Kustomization", name="apps", namespace="flux-system")


@pytest.mark.parametrize("action", ["pause_gitops_self_heal", "resume_gitops_self_heal"])
def test_each_scope_takes_only_its_kinds(action: str) -> None:
    spec = get_action(action)
    spec.validate(KS, {})
    spec.validate(DEPLOY, {"scope": "object"})
    with pytest.raises(CatalogError, match="scope: owner takes a target of kind Application"):
        spec.validate(DEPLOY, {})
    with pytest.raises(CatalogError, match="scope: object takes a target of kind Deployment"):
        spec.validate(KS, {"scope": "object"})
    with pytest.raises(CatalogError, match="scope"):
        spec.validate(DEPLOY, {"scope": "namespace"})


def test_the_plan_names_the_annotation_and_the_inverse_keeps_the_scope() -> None:
    pause, resume = get_action("pause_gitops_self_heal"), get_action("resume_gitops_self_heal")
    plan = pause.planner(DEPLOY, pause.parse_params({"scope": "object"}))
    assert "metadata.annotations[kustomize.toolkit.fluxcd.io/reconcile]=disabled" in plan[-1]
    assert "removed" in resume.planner(DEPLOY, resume.parse_params({"scope": "object"}))[-1]
    assert "spec.suspend=true" in pause.planner(KS, pause.parse_params({}))[-1]
    assert pause.operation is not None
    inverse = pause.operation.inverse(DEPLOY, pause.parse_params({"scope": "object"}), {})
    assert inverse == {"action": "resume_gitops_self_heal", "target": DEPLOY.model_dump(),
                       "parameters": {"scope": "object"}}
    assert pause.operation.inverse(KS, pause.parse_params({}), {})["parameters"] == {}
