"""The job bus, declared: every kind of durable job, who writes it, which deployment works it off, what it
refers to and how it is retried.

A job is a ``jobs`` row (kind, ref_id) written in the producer's transaction (see
:mod:`kubernaut.storage.jobs`). ``ref_id`` is one id; the kind's payload model says which id it is, so a
producer cannot hand an incident id to a consumer that expects an analysis id. ``tests/structure/test_job_kinds.py``
checks this table against the code: every kind enqueued is declared with the modules that enqueue it, and
every declared kind is claimed by the deployment named here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import Self


class JobKind(str, Enum):
    """The stored name of each kind (the ``jobs.kind`` column, ``work.kinds.<kind>``, metric labels)."""

    ANALYZE = "analyze"
    SECOND_OPINION = "second_opinion"
    WORKFLOW = "workflow"
    NOTIFY = "notify"
    ESCALATE = "escalate"
    ASSESS = "assess"
    EMBED = "embed"
    MINE = "mine"
    RETENTION = "retention"

    def __str__(self) -> str:  # labels, log lines and f-strings carry the stored name
        return self.value

    @property
    def spec(self) -> JobSpec:
        return REGISTRY[self]


# --- payloads: what a job's ref_id refers to -----------------------------------------------------------


class JobPayload(BaseModel):
    """The one id a job carries; ``_ref`` names the field stored in ``jobs.ref_id``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    _ref: ClassVar[str | None] = None

    @property
    def ref_id(self) -> int:
        return 0 if self._ref is None else int(getattr(self, self._ref))

    @classmethod
    def from_ref(cls, ref_id: int) -> Self:
        if cls._ref is None:
            if ref_id != 0:
                raise ValueError(f"{cls.__name__} jobs are stored with ref_id 0, not {ref_id}")
            return cls()
        return cls.model_validate({cls._ref: ref_id})


class IncidentRef(JobPayload):
    _ref: ClassVar[str | None] = "incident_id"
    incident_id: int = Field(ge=0)


class AnalysisRef(JobPayload):
    _ref: ClassVar[str | None] = "analysis_id"
    analysis_id: int = Field(ge=0)


class NotificationRef(JobPayload):
    _ref: ClassVar[str | None] = "notification_id"
    notification_id: int = Field(ge=0)


class ApprovalRef(JobPayload):
    _ref: ClassVar[str | None] = "approval_id"
    approval_id: int = Field(ge=0)


class ActionRef(JobPayload):
    _ref: ClassVar[str | None] = "action_id"
    action_id: int = Field(ge=0)


class Singleton(JobPayload):
    """A periodic job that exists once (stored as ref_id 0) and reschedules itself."""


# --- the registry -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryDefaults:
    """A kind's own retry defaults; None takes the ``work`` default. ``work.kinds.<kind>`` overrides both."""

    max_attempts: int | None = None
    backoff_initial_s: float | None = None
    backoff_max_s: float | None = None


@dataclass(frozen=True)
class JobSpec:
    kind: JobKind
    #: What the job asks for, in one line.
    purpose: str
    #: Modules that write jobs of this kind (enqueue, requeue or wake).
    producers: tuple[str, ...]
    #: The Serve deployment (``@serve.deployment(name=...)``) whose job worker claims this kind.
    consumer: str
    payload: type[JobPayload]
    retry: RetryDefaults = field(default_factory=RetryDefaults)


_SPECS = (
    JobSpec(JobKind.ANALYZE, "analyse an incident (again, when a new alert name joins it)",
            ("kubernaut.processing.intake",), "analysis", IncidentRef),
    JobSpec(JobKind.SECOND_OPINION, "ask HolmesGPT about a new analysis (advisory, never on the decision's path)",
            ("kubernaut.analysis.deployment",), "analysis", AnalysisRef),
    # One job per analysis drives its workflow from creation to the end: the analysis hands it over, an
    # approval decision or expiry wakes it, every wait reschedules it.
    JobSpec(JobKind.WORKFLOW, "create and advance the workflow of an analysis",
            ("kubernaut.analysis.deployment", "kubernaut.orchestration.workflow_job"), "orchestrator", AnalysisRef),
    JobSpec(JobKind.NOTIFY, "deliver a recorded notification to every configured URL",
            ("kubernaut.storage.notifications",), "notifications", NotificationRef),
    # One job per approval request: it waits (reschedules) until notifications.escalation says to notify again.
    JobSpec(JobKind.ESCALATE, "notify again about an approval nobody decided (escalation, reminder before expiry)",
            ("kubernaut.storage.notifications",), "notifications", ApprovalRef),
    JobSpec(JobKind.ASSESS, "score an executed mutating action (or a proposed change once synced) after its "
            "stabilization window", ("kubernaut.orchestration.engine", "kubernaut.orchestration.gitops_flow",
                                     "kubernaut.effectiveness.monitor"), "effectiveness", ActionRef),
    JobSpec(JobKind.EMBED, "embed an incident whose assessment completed, for similarity search",
            ("kubernaut.effectiveness.monitor",), "intelligence", IncidentRef),
    JobSpec(JobKind.MINE, "fold final assessments into the learning statistics (periodic)",
            ("kubernaut.intelligence.deployment", "kubernaut.effectiveness.monitor"), "intelligence", Singleton),
    JobSpec(JobKind.RETENTION, "delete what is older than storage.retention_days (periodic)",
            ("kubernaut.intelligence.deployment",), "intelligence", Singleton),
)

REGISTRY: dict[JobKind, JobSpec] = {spec.kind: spec for spec in _SPECS}

#: Kinds that earlier versions stored and a migration rewrote (0011_one_workflow_job.sql): named here so a
#: configuration that still uses one is refused with the kind that replaced it.
RETIRED: dict[str, JobKind] = {"orchestrate": JobKind.WORKFLOW}


def consumer_of(kind: str) -> str | None:
    """The deployment that claims jobs stored with ``kind``; None for a kind that is not declared."""
    try:
        return JobKind(kind).spec.consumer
    except ValueError:
        return None
