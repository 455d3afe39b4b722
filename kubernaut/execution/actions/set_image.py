"""set_image: Replace the image of one container of a Deployment, StatefulSet or DaemonSet."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.grammar import DnsLabel
from kubernaut.execution.catalog.hygiene import reject_whitespace
from kubernaut.execution.catalog.params import ActionParams
from kubernaut.execution.catalog.plan import PlanDraft, ref
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import rollout_state, with_rv
from kubernaut.models.resource import ResourceRef

# Docker/OCI reference grammar (distribution/reference), simplified: [registry[:port]/]path[:tag][@digest].
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"


_HOST_PART = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"


_DOMAIN = rf"(?:{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]{{1,5}})?/)?"


IMAGE_RE = (
    rf"^{_DOMAIN}{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha(?:256:[a-f0-9]{64}|512:[a-f0-9]{128}))?$"
)


_TAG_OR_DIGEST = re.compile(r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha(256|512):[a-f0-9]+)$")


ImageRef = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, pattern=IMAGE_RE),
    BeforeValidator(reject_whitespace),
    Field(examples=["registry.example.com/payments/api:1.4.2", "nginx@sha256:" + "0" * 64]),
]


def image_repository(image: str) -> str:
    """``host[:port]/path`` of an image reference, as a container runtime resolves it: without a registry
    host, the reference is Docker Hub's (``nginx`` → ``docker.io/library/nginx``)."""
    name = image.split("@", 1)[0]
    head, _, rest = name.partition("/")
    if rest and ("." in head or ":" in head or head == "localhost"):
        host, path = head.lower(), rest
    else:
        host, path = "docker.io", name if rest else f"library/{name}"
    last = path.rsplit("/", 1)
    last[-1] = last[-1].split(":", 1)[0]
    return f"{host}/{'/'.join(last)}"


def registry_allowed(image: str, registries: list[str]) -> bool:
    """True when the image comes from one of ``registries`` (execution.image_registries: host[:port][/path]
    prefixes, matched on whole path components so ``registry.example.com/pay`` does not admit ``…/payments``)."""
    repository = image_repository(image)
    for allowed in registries:
        host, _, path = allowed.partition("/")
        prefix = f"{host.lower()}/{path}".rstrip("/")
        if repository == prefix or repository.startswith(prefix + "/"):
            return True
    return False


class SetImageParams(ActionParams):
    """Container and image are both required: guessing the container of a multi-container pod
    (sidecars!) is how the wrong image ends up in production."""

    container: DnsLabel = Field(description="Name of the container (not an init container) whose image is replaced.")
    image: ImageRef = Field(description="Full image reference; prefer a digest or an immutable tag.")


def _plan_set_image(target: ResourceRef, params: SetImageParams) -> PlanDraft:
    warnings: list[str] = []
    if not _TAG_OR_DIGEST.search(params.image.rsplit("/", 1)[-1]) or params.image.endswith(":latest"):
        warnings.append("the image has no immutable tag or digest: the rollout is not reproducible")
    return PlanDraft(
        steps=[
            f"GET {ref(target)} (refuse unless spec.template.spec.containers has {params.container!r}; "
            "record its current image for the inverse)",
            f"PATCH {ref(target)} "
            f"spec.template.spec.containers[name={params.container}].image={params.image} (strategic merge)",
            f"WATCH {ref(target)} until the rollout completes and the new pods are Ready",
        ],
        warnings=warnings,
    )


class SetImage(Operation):
    name = "set_image"

    async def prepare(self, ctx: Context, target: ResourceRef, params: SetImageParams,
                      undo: dict[str, Any] | None) -> Prepared:
        # Whoever proposed the image (rules, the LLM, an approver's override), it must come from a registry
        # the operators trust; an inverse restores the image that ran before, which it recorded itself.
        if undo is None and not registry_allowed(params.image, ctx.config.image_registries):
            allowed = ", ".join(ctx.config.image_registries) or "none configured: set_image is disabled"
            raise Refused(f"image: {image_repository(params.image)} is not on execution.image_registries "
                          f"({allowed})")
        obj = await must_get(ctx, target)
        containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
        found = next((c for c in containers if c.get("name") == params.container), None)
        if found is None:
            names = ", ".join(c.get("name", "?") for c in containers)
            raise Refused(f"the pod template has no container {params.container!r} (containers: {names})")
        if found.get("image") == params.image:
            raise Refused(f"container {params.container} already runs {params.image}")
        body = with_rv(obj, {"spec": {"template": {"spec": {"containers": [
            {"name": params.container, "image": params.image}]}}}})
        write = Write("patch", target.kind, target.name, target.namespace, body, "strategic", before=obj)
        return Prepared([write], {"container": params.container, "image": found.get("image")},
                        {"container": params.container, "image": params.image})

    def inverse(self, target: ResourceRef, params: SetImageParams, record: dict[str, Any]) -> dict[str, Any] | None:
        return self.inverse_request(self.name, target, {"container": record["container"], "image": record["image"]})

    async def verify(self, ctx: Context, target: ResourceRef, params: SetImageParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        obj = await must_get(ctx, target)
        containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
        image = next((c.get("image") for c in containers if c.get("name") == after["container"]), None)
        if image != after["image"]:
            return Verification(False, [f"container {after['container']} runs {image!r}, not {after['image']!r}"])
        done, text = rollout_state(obj)
        return Verification(done, [f"template image of {after['container']} is {image}", text])


SPEC = declared(__name__, params=SetImageParams, planner=_plan_set_image, operation=SetImage())
