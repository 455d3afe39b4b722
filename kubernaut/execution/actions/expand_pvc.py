"""expand_pvc: Grow a PersistentVolumeClaim (to a size, or by a factor, capped); volumes never shrink back."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from typing import Any

from pydantic import Field, model_validator

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.grammar import Quantity
from kubernaut.execution.catalog.params import ActionParams
from kubernaut.execution.catalog.plan import ref
from kubernaut.execution.catalog.quantity import parse_quantity
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import meta, with_rv
from kubernaut.models.resource import ResourceRef

SIZE_CEILING = "64Ti"


class ExpandPvcParams(ActionParams):
    """Exactly one of new_size / factor, always under max_size, because an expansion cannot be undone
    and storage is billed by the size requested."""

    new_size: Quantity | None = Field(default=None, description="Absolute new spec.resources.requests.storage.")
    factor: float | None = Field(default=None, ge=1.1, le=4.0, description="Multiply the current request by this.")
    max_size: Quantity = Field(default="1Ti", description=f"Cap on the resulting size; at most {SIZE_CEILING}.")

    @model_validator(mode="after")
    def _sizes(self) -> ExpandPvcParams:
        if (self.new_size is None) == (self.factor is None):
            raise ValueError("new_size, factor: give exactly one of them")
        cap = parse_quantity(self.max_size)
        if cap > parse_quantity(SIZE_CEILING):
            raise ValueError(f"max_size: {self.max_size} exceeds the ceiling {SIZE_CEILING}")
        if self.new_size is not None:
            size = parse_quantity(self.new_size)
            if size < 2**20:
                raise ValueError(f"new_size: {self.new_size} is implausibly small; check the unit")
            if size > cap:
                raise ValueError(f"new_size: {self.new_size} exceeds max_size {self.max_size}")
        return self


def _plan_expand(target: ResourceRef, params: ExpandPvcParams) -> list[str]:
    size = params.new_size or f"min(<current request> x {params.factor:g}, {params.max_size})"
    return [
        f"GET {ref(target)} (record spec.resources.requests.storage; refuse unless phase Bound and the new "
        "size is larger)",
        "GET storage.k8s.io/v1 StorageClass <the claim's storageClassName> (refuse unless allowVolumeExpansion)",
        f"LIST v1 ResourceQuota in namespace {target.namespace} (refuse when requests.storage would exceed it)",
        f"PATCH {ref(target)} spec.resources.requests.storage={size}",
        f"WATCH {ref(target)} until status.capacity.storage reaches the new size (FileSystemResizePending "
        "means a pod restart completes it)",
    ]


def _size(value: Decimal) -> str:
    mib = int((value / Decimal(2**20)).to_integral_value(ROUND_CEILING))
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


class ExpandPvc(Operation):
    name = "expand_pvc"

    async def prepare(self, ctx: Context, target: ResourceRef, params: ExpandPvcParams,
                      undo: dict[str, Any] | None) -> Prepared:
        pvc = await must_get(ctx, target)
        spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
        if status.get("phase") != "Bound":
            raise Refused(f"claim {target.namespace}/{target.name} is {status.get('phase', 'not Bound')}: only a "
                          "Bound claim can be expanded")
        class_name = spec.get("storageClassName")
        if not class_name:
            raise Refused("the claim has no storageClassName: only dynamically provisioned claims can be expanded")
        storage_class = await ctx.kube.get_or_none("StorageClass", class_name)
        if storage_class is None:
            raise Refused(f"StorageClass {class_name} does not exist")
        if not storage_class.get("allowVolumeExpansion"):
            raise Refused(f"StorageClass {class_name} does not allow volume expansion (allowVolumeExpansion)")
        current_text = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "0")
        current = parse_quantity(current_text)
        if params.new_size is not None:
            new_text = params.new_size
        else:
            assert params.factor is not None
            new_text = _size(min(current * Decimal(str(params.factor)), parse_quantity(params.max_size)))
        new = parse_quantity(new_text)
        if new <= current:
            raise Refused(f"{new_text} is not larger than the current request {current_text}: volumes never shrink")
        for quota in await ctx.kube.list("ResourceQuota", target.namespace):
            hard_all = (quota.get("spec") or {}).get("hard") or {}
            used_all = (quota.get("status") or {}).get("used") or {}
            for key in ("requests.storage", f"{class_name}.storageclass.storage.k8s.io/requests.storage"):
                if key in hard_all and parse_quantity(used_all.get(key, "0")) + new - current > parse_quantity(
                        hard_all[key]):
                    raise Refused(f"ResourceQuota {meta(quota)['name']}: {key} used {used_all.get(key, '0')} of "
                                  f"{hard_all[key]} leaves no room for {new_text}")
        body = with_rv(pvc, {"spec": {"resources": {"requests": {"storage": new_text}}}})
        write = Write("patch", "PersistentVolumeClaim", target.name, target.namespace, body, before=pvc)
        record = {"size": current_text, "capacity": (status.get("capacity") or {}).get("storage")}
        return Prepared([write], record, {"size": new_text},
                        ["an expansion cannot be undone: Kubernetes never shrinks a volume"])

    async def verify(self, ctx: Context, target: ResourceRef, params: ExpandPvcParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        pvc = await must_get(ctx, target)
        spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
        want = parse_quantity(after["size"])
        requested = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "0")
        if parse_quantity(requested) < want:
            return Verification(False, [f"spec.resources.requests.storage is {requested}, below {after['size']}"])
        capacity = (status.get("capacity") or {}).get("storage")
        checks = [f"requested {requested}"]
        if capacity and parse_quantity(capacity) >= want:
            return Verification(True, [*checks, f"status.capacity.storage={capacity}"])
        conditions = [c.get("type") for c in status.get("conditions") or []]
        return Verification(None, [*checks, f"capacity still {capacity} "
                                            f"(resize in progress: {conditions or 'pending'})"])


SPEC = declared(__name__, params=ExpandPvcParams, planner=_plan_expand, operation=ExpandPvc())
