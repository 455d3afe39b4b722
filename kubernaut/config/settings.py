"""The one configuration model: filled from ``serve_config.yaml`` args, then the environment.

Precedence (highest first): explicit args from ``serve_config.yaml`` → environment variables
(``KUBERNAUT_*``, nested with ``__``, plus the conventional ``DATABASE_URL``) → safe local defaults.
Secrets (DSN, tokens, API keys) are meant to come from the environment so they never sit in YAML.
"""

from __future__ import annotations

import hashlib
import os
import re
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kubernaut.config.auth import KubernetesAuthConfig, OIDCConfig
from kubernaut.config.console import ConsoleConfig
from kubernaut.config.gitops import GitOpsConfig
from kubernaut.config.mcp import McpConfig
from kubernaut.config.notifications import RoutingMixin
from kubernaut.models.jobs import RETIRED, JobKind
from kubernaut.models.principal import Role


class ExecutionMode(str, Enum):
    DRY_RUN = "dry-run"
    LIVE = "live"


class AutoscalingConfig(BaseModel):
    min_replicas: int = Field(default=1, ge=0, le=100)
    max_replicas: int = Field(default=2, ge=1, le=100)
    target_ongoing_requests: float = Field(default=20, gt=0)


class DeploymentConfig(BaseModel):
    """Ray Serve knobs of one service; fractional CPUs so the whole app fits on a 2-core laptop."""

    num_cpus: float = Field(default=0.1, ge=0, le=64)
    max_ongoing_requests: int = Field(default=100, ge=1, le=10_000)
    autoscaling: AutoscalingConfig = Field(default_factory=AutoscalingConfig)
    # Custom Ray resources each replica needs, e.g. {"kubernaut-executor": 1}: on KubeRay a worker group offers
    # them (rayStartParams.resources), so the deployment runs only in that group's pods, under that group's
    # ServiceAccount and secrets (deploy/README.md). Empty by default: no local node offers any.
    resources: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")],
                    Annotated[float, Field(gt=0, le=10_000)]] = Field(default_factory=dict, max_length=8)
    # Build this deployment's configuration in each replica from the serve args and the replica's own environment
    # instead of shipping the builder's (kubernaut.app): a secret then reaches only the worker groups that mount
    # it, and none sits in the init args Serve checkpoints in GCS. Only with kubernaut.app:build (it has the args).
    config_from_replica_env: bool = False


def _default_deployments() -> dict[str, DeploymentConfig]:
    return {
        "gateway": DeploymentConfig(num_cpus=0.2, max_ongoing_requests=500,
                                    autoscaling=AutoscalingConfig(max_replicas=4, target_ongoing_requests=100)),
        "processor": DeploymentConfig(num_cpus=0.1, max_ongoing_requests=200),
        "analysis": DeploymentConfig(num_cpus=0.1, max_ongoing_requests=50),
        "context": DeploymentConfig(num_cpus=0.05, max_ongoing_requests=100),
        "orchestrator": DeploymentConfig(num_cpus=0.1, max_ongoing_requests=100),
        "executor": DeploymentConfig(num_cpus=0.1, max_ongoing_requests=50),
        "effectiveness": DeploymentConfig(num_cpus=0.05, max_ongoing_requests=50),
        "intelligence": DeploymentConfig(num_cpus=0.05, max_ongoing_requests=50),
        "notifications": DeploymentConfig(num_cpus=0.05, max_ongoing_requests=100),
    }


_AUDIT_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class AuditConfig(BaseModel):
    """The audit chain's HMAC keys and where its head is anchored (kubernaut/storage/audit.py, ``storage.audit``).

    Keys never live in the database: an attacker who can write rows cannot recompute the chain. Each event
    stores the id of the key that signed it, so keys rotate by adding a new one, making it active and keeping
    the old ones for verification; an event whose key is gone fails verification naming the key id.
    """

    model_config = {"extra": "forbid"}

    # {key_id: secret}, e.g. from KUBERNAUT_STORAGE__AUDIT__KEYS='{"2026-01": "..."}'.
    keys: dict[str, SecretStr] = Field(default_factory=dict)
    # A JSON file {key_id: secret}, e.g. a mounted Kubernetes Secret; merged with ``keys``.
    keys_file: Path | None = None
    # The key that signs new events; may be left out when exactly one key is configured.
    active_key_id: str | None = Field(default=None, max_length=64)
    # No key configured: generate one once and keep it in ``<data_dir>-audit-keys.json`` (mode 0600), next to
    # the database files but not in them. Set false in production so a missing Secret refuses to start.
    local_key: bool = True
    # The chain head (sequence, hash) is logged, exported as ray_kubernaut_audit_head_seq and appended to
    # ``anchor_path`` (JSON lines) this often; verification against the last anchor detects a deleted tail.
    anchor_interval_s: float = Field(default=60.0, gt=0, le=86400)
    anchor_path: Path | None = None

    @field_validator("keys")
    @classmethod
    def _keys_well_formed(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key_id, secret in value.items():
            if not _AUDIT_KEY_ID.fullmatch(key_id):
                raise ValueError(f"storage.audit.keys: key id {key_id!r} must be 1-64 letters, digits, '.', '_', '-'")
            if len(secret.get_secret_value()) < 16:
                raise ValueError(f"storage.audit.keys[{key_id!r}]: a secret must have at least 16 characters")
        return value


class StorageConfig(BaseModel):
    # None → embedded PostgreSQL+pgvector in ``data_dir`` (same code path as an external server).
    dsn: SecretStr | None = None
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".kubernaut" / "data")
    pool_min_size: int = Field(default=1, ge=0, le=50)
    pool_max_size: int = Field(default=5, ge=1, le=200)
    command_timeout_s: float = Field(default=10.0, gt=0)
    # Retention (kubernaut/storage/retention.py): alerts, actions and notifications of incidents resolved or
    # closed more than this many days ago are deleted; None keeps everything. Audit events are never deleted
    # (the chain stays verifiable), nor are actions whose assessments mining has not counted yet. At least a
    # day, so cooldowns and blast-radius budgets still see every recent execution.
    retention_days: float | None = Field(default=None, ge=1, le=36_500)
    # How often the retention job runs (the intelligence deployment runs it, one replica at a time).
    retention_interval_s: float = Field(default=3600.0, ge=1, le=7 * 86400)
    retention_batch: int = Field(default=5000, ge=1, le=100_000)  # rows per short transaction
    # The owner role's DSN: migrations and the audit grants run with it, the pools with ``dsn`` (the app role,
    # which may only INSERT/SELECT the audit tables). Absent: migrations run with ``dsn`` and the grants
    # cannot be set (a warning at every start, unless require_role_separation refuses to start).
    migration_dsn: SecretStr | None = None
    # Embedded server only: the login role the pools use (created at start-up, trust on the unix socket).
    app_role: str = Field(default="kubernaut_app", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    # Refuse to start when the app role could UPDATE/DELETE/TRUNCATE audit events (superuser, owner, grants).
    require_role_separation: bool = False
    audit: AuditConfig = Field(default_factory=AuditConfig)


EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class StaticToken(BaseModel):
    """One static bearer token, for machines (AlertManager, scripts): its hash, never the token itself.

    Produce an entry with ``kubernaut token new --name alertmanager --role ingest`` (or ``kubernaut token hash``
    for a token you already have). Entries that share a ``name`` are rotations of one credential: add the new
    token, move the senders over, then remove the old entry.
    """

    model_config = ConfigDict(extra="forbid")

    # The principal's name; the audit trail records it as ``token:<name>``.
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    # sha256 of a high-entropy token (``kubernaut token new`` makes 256-bit ones): a fast unsalted hash is
    # enough there because nobody can guess 2^256 candidates, unlike passwords; a slow KDF (argon2) would cost
    # tens of milliseconds on every webhook. The ``sha256:`` prefix leaves room for other schemes.
    hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    roles: list[Role] = Field(min_length=1)
    # Where an ``approver`` may decide: namespace names, or "*" for every namespace (and cluster-scoped targets).
    approve_namespaces: list[str] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _consistent(self) -> StaticToken:
        if self.hash == f"sha256:{EMPTY_SHA256}":
            raise ValueError(f"token {self.name!r}: this is the hash of an empty token; an empty token is not a "
                             "credential (make one with `kubernaut token new`)")
        if Role.APPROVER in self.roles and not self.approve_namespaces:
            raise ValueError(f"token {self.name!r} has role approver but no approve_namespaces: list the "
                             'namespaces it may approve in, or "*" for all')
        if self.approve_namespaces and Role.APPROVER not in self.roles and Role.ADMIN not in self.roles:
            raise ValueError(f"token {self.name!r}: approve_namespaces needs role approver")
        return self


class GatewayConfig(BaseModel):
    # Static bearer tokens by hash, each with its roles (kubernaut.identity.static_tokens). Put them in the
    # environment/secret (KUBERNAUT_GATEWAY__TOKENS, a JSON list), not in serve_config.yaml.
    tokens: list[StaticToken] = Field(default_factory=list, max_length=1000)
    # Without any authentication configured the gateway serves only a loopback address (every caller is the
    # principal ``anonymous`` with role admin: the local quickstart). Listening on any other address without
    # authentication is refused at start unless this is true; then every start logs a warning and
    # /api/v1/info says so. It has no effect once authentication is configured (no credentials → 401).
    allow_anonymous: bool = False
    # Kubernetes identities (TokenReview + SubjectAccessReview) and OIDC/JWT bearer tokens; both off by default.
    # All configured methods work at once: static tokens are tried first, then OIDC, then Kubernetes.
    kubernetes: KubernetesAuthConfig = Field(default_factory=KubernetesAuthConfig)
    oidc: OIDCConfig = Field(default_factory=OIDCConfig)
    # Large groups are what storms look like: AlertManager does not retry a 4xx, so a group refused is a group
    # lost. 8 MiB holds 5,000 alerts of 1.6 KB (kube-prometheus alerts are 0.5 to 1 KB); above max_alerts_per_request
    # the first alerts are stored and the rest counted (truncated_alerts), as AlertManager's own max_alerts does.
    # The shipped AlertManager example sets max_alerts below this (deploy/monitoring/).
    max_body_bytes: int = Field(default=8 * 1_048_576, ge=1024, le=64 * 1_048_576)
    max_alerts_per_request: int = Field(default=5000, ge=1, le=100_000)
    # POST /api/v1/analyze: analysis is work per target (LLM calls), so its bodies are capped lower and refused
    # (413) above the cap; the analysis runs a bounded number of targets at once (kubernaut/analysis/dry.py).
    analyze_max_alerts: int = Field(default=1000, ge=1, le=100_000)
    # How long a webhook waits for a connection of the gateway's ingest pool: with PostgreSQL down the sender
    # gets 503 + Retry-After this quickly instead of after the connect timeout.
    ingest_acquire_timeout_s: float = Field(default=2.0, gt=0, le=60)
    # How long the gateway waits for the processor to assign incidents before answering anyway
    # (the alerts are already committed; the processor's sweeper finishes the job).
    process_wait_s: float = Field(default=3.0, ge=0, le=30)
    # Above this many requests in flight on one replica the gateway stops waiting for incident ids:
    # under load the acknowledgement is what AlertManager needs, ids are a courtesy.
    process_wait_max_inflight: int = Field(default=4, ge=0, le=10_000)
    # Nor above this many webhooks per second on one replica (measured over the last second): at that rate
    # waiting would put processing time into every acknowledgement.
    process_wait_max_rate: float = Field(default=20.0, ge=0, le=100_000)
    max_labels_per_alert: int = Field(default=128, ge=8, le=10_000)
    # Per-sender token bucket (sender = bearer token, else client address); 0 disables.
    rate_limit_per_s: float = Field(default=200.0, ge=0)
    rate_limit_burst: int = Field(default=1000, ge=1)
    # Only behind a trusted proxy: take the sender address from X-Forwarded-For.
    trust_forwarded_for: bool = False

    @model_validator(mode="before")
    @classmethod
    def _no_plain_tokens(cls, data: Any) -> Any:
        # The old setting held plain tokens that granted everything; guessing roles for them would either break
        # AlertManager or hand it approvals, so it is refused with the way forward (fail closed).
        if isinstance(data, dict) and "auth_tokens" in data:
            raise ValueError("gateway.auth_tokens (KUBERNAUT_GATEWAY__AUTH_TOKENS) is no longer supported: plain "
                             "tokens granted every right. Hash each token with `kubernaut token hash` and list it "
                             "in gateway.tokens (KUBERNAUT_GATEWAY__TOKENS) with its roles, e.g. "
                             '[{"name": "alertmanager", "roles": ["ingest"], "hash": "sha256:..."}]')
        return data

    @field_validator("tokens")
    @classmethod
    def _distinct_hashes(cls, value: list[StaticToken]) -> list[StaticToken]:
        seen: dict[str, str] = {}
        for token in value:
            if token.hash in seen:
                raise ValueError(f"tokens {seen[token.hash]!r} and {token.name!r} have the same hash: one token "
                                 "would be two principals")
            seen[token.hash] = token.name
        return value

    @property
    def authentication_configured(self) -> bool:
        return bool(self.tokens) or self.kubernetes.enabled or self.oidc.enabled


class FilterRule(BaseModel):
    """Decides whether matching alerts are processed; the first matching rule wins, default process."""

    model_config = {"extra": "forbid"}

    name: str = Field(min_length=1, max_length=100)
    action: Literal["drop", "process"] = "drop"
    mode: Literal["all", "any"] = "all"
    # Values are shell-style wildcards (fnmatch): "kube-*", "*-canary", "?".
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    severity: list[str] = Field(default_factory=list)
    namespaces: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_condition(self) -> FilterRule:
        if not (self.labels or self.annotations or self.severity or self.namespaces):
            raise ValueError(f"filter {self.name!r} has no condition (labels, annotations, severity or namespaces)")
        return self


class EventSourceConfig(BaseModel):
    """Optional second signal source: Kubernetes Warning events turned into alerts (kubernaut.processing.events)."""

    enabled: bool = False  # opt-in: list/watch on events cluster-wide (or in `namespaces`)
    namespaces: list[str] = Field(default_factory=list)  # empty: all namespaces
    # Event reason → alert name the rules know (kubernaut/analysis/rules.yaml). Entries given in the config are
    # merged over these defaults; map a reason to "" to ignore it.
    reasons: dict[str, str] = Field(default_factory=lambda: {
        "BackOff": "KubePodCrashLooping",  # crash loop (reason label CrashLoopBackOff)
        "OOMKilling": "KubeContainerOOMKilled",  # kernel OOM on a node (node-problem-detector)
        "OOMKilled": "KubeContainerOOMKilled",
        "FailedScheduling": "KubePodNotReady",  # a Pending pod is not ready; the rules check pods.unschedulable
        "Failed": "KubeContainerWaiting",  # only image-pull and container-config errors named in the message
        "FailedMount": "KubeContainerWaiting",
        "FailedAttachVolume": "KubeContainerWaiting",
        "Evicted": "KubeNodeEviction",  # on the node named by the event's source host
        "Unhealthy": "KubePodNotReady",  # readiness probe failures only
    })
    # Occurrences (event count) before an event becomes an alert, per reason (default 1).
    min_count: dict[str, int] = Field(default_factory=lambda: {"Unhealthy": 3})
    max_message_chars: int = Field(default=1024, ge=64, le=16_384)  # the message is untrusted text
    # An event alert resolves itself after this long without a new occurrence; 0: never.
    resolve_after_s: float = Field(default=900.0, ge=0, le=7 * 86400)
    sweep_interval_s: float = Field(default=30.0, gt=0, le=3600)  # how often quiet alerts are resolved
    watch_timeout_s: int = Field(default=300, ge=5, le=3600)  # server-side; then re-watch from resourceVersion
    backoff_initial_s: float = Field(default=1.0, gt=0, le=300)  # API errors: exponential backoff with jitter
    backoff_max_s: float = Field(default=60.0, gt=0, le=3600)
    # Each cluster's watch has one owner replica at a time (kubernaut.processing.watch_ownership): a lease in
    # PostgreSQL renewed every lease_renew_s; a dead owner's clusters are taken over after lease_ttl_s.
    lease_ttl_s: float = Field(default=30.0, ge=2, le=600)
    lease_renew_s: float = Field(default=10.0, gt=0, le=200)

    @model_validator(mode="after")
    def _renew_within_ttl(self) -> EventSourceConfig:
        if self.lease_renew_s * 2 > self.lease_ttl_s:
            raise ValueError("processing.events.lease_renew_s must be at most half of lease_ttl_s")
        return self

    @field_validator("reasons")
    @classmethod
    def _merge_reasons(cls, value: dict[str, str]) -> dict[str, str]:
        merged = {**cls.model_fields["reasons"].default_factory(), **value}
        for reason, alertname in merged.items():
            if len(reason) > 128 or len(alertname) > 256 or "\x00" in reason + alertname:
                raise ValueError(f"bad event reason mapping {reason[:64]!r}")
        return {reason: alertname for reason, alertname in merged.items() if alertname}


class ProcessingConfig(BaseModel):
    filters: list[FilterRule] = Field(default_factory=list)
    filters_file: Path | None = None  # YAML list of FilterRule, applied after `filters`
    # Resolve Pod → ReplicaSet → Deployment through the API when a cluster is reachable.
    resolve_owners: bool = True
    owner_cache_ttl_s: float = Field(default=30.0, ge=0, le=3600)
    kube_timeout_s: float = Field(default=3.0, gt=0, le=60)
    # Storm collapse: analysis runs once per incident; set to re-analyze when a new alert name joins.
    reanalyze_on_new_signal: bool = False
    # Optional second source: Kubernetes Warning events (kubernaut.processing.events).
    events: EventSourceConfig = Field(default_factory=EventSourceConfig)


class AnalysisConfig(BaseModel):
    """How incidents are analysed: the rule engine always, an OpenAI-compatible LLM when configured.

    Flat ``llm_*`` fields (rather than a nested model) so each one can be set from the environment
    as ``KUBERNAUT_ANALYSIS__LLM_MODEL`` etc.; the API key belongs there, never in YAML.
    """

    # Deprecated single file, kept for old configs: treated as the first entry of rules_files.
    rules_file: Path | None = None
    # User rule files, consulted before the packaged rules (first matching rule wins).
    rules_files: list[Path] = Field(default_factory=list)

    # -- LLM provider (None/empty model → rule engine only) ------------------------------------------
    llm_provider: str = Field(default="openai",
                              pattern="^(openai|azure|ollama|vllm|llama-cpp|compatible|serve_handle)$")
    llm_serve_app: str = "llm"  # serve_handle: the co-deployed Serve app (kubernaut/llm_handle.py ingress)
    llm_base_url: str | None = None  # e.g. http://llm:8000/v1 (the optional Serve app `llm`), Ollama's /v1
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    azure_api_version: str = "2024-10-21"
    azure_deployment: str | None = None
    # How structured output is requested: OpenAI-standard json_schema (OpenAI, Azure, vLLM, llama-server),
    # json_object with a `schema` (llama-cpp-python server), a forced tool call, or prompt-only JSON.
    # None → the provider's default (see kubernaut.analysis.llm.providers).
    llm_response_format: str | None = Field(default=None, pattern="^(json_schema|json_object|tools|prompt)$")
    llm_strict_schema: bool = True
    llm_temperature: float = Field(default=0.0, ge=0, le=2)
    # -- budgets -------------------------------------------------------------------------------------------
    llm_request_timeout_s: float = Field(default=20.0, gt=0, le=600)
    llm_max_retries: int = Field(default=1, ge=0, le=10)  # transport retries inside one call (SDK)
    llm_max_repairs: int = Field(default=2, ge=0, le=2)  # corrective re-asks after an invalid answer
    llm_max_completion_tokens: int = Field(default=400, ge=16, le=32_000)
    # The model's context window (prompt + completion); None: read /v1/models' max_model_len where a self-hosted
    # server offers it. When known, the prompt's DATA block is trimmed to fit (kubernaut/analysis/prompt_fit.py).
    llm_context_tokens: int | None = Field(default=None, ge=256, le=10_000_000)
    llm_incident_token_budget: int = Field(default=8000, ge=100, le=1_000_000)  # prompt + completion, all calls
    llm_incident_time_budget_s: float = Field(default=30.0, gt=0, le=900)  # wall clock for the whole LLM phase
    # Global budget across all replicas, kept in PostgreSQL (kubernaut/storage/llm_budget.py); None = unlimited.
    # Beyond it, or when the budget store cannot be reached, the rules decide and the analysis says why.
    llm_tokens_per_minute: int | None = Field(default=None, ge=100)
    llm_tokens_per_day: int | None = Field(default=None, ge=100)
    # -- escalation: a cheaper first model, a stronger one when it is unsure or fails ----------------------
    llm_escalation_model: str | None = None
    llm_escalation_below_confidence: float = Field(default=0.6, ge=0, le=1)
    # -- circuit breaker ----------------------------------------------------------------------------------
    llm_breaker_failures: int = Field(default=3, ge=1, le=100)  # consecutive provider failures that open it
    llm_breaker_reset_s: float = Field(default=60.0, gt=0, le=3600)  # open → one trial call after this
    # -- what the LLM may decide ----------------------------------------------------------------------------
    # rule_candidates: only actions the rules consider for this incident (their choice and alternatives)
    # plus read-only ones; catalog: any catalog action that fits the target. Guards and scope apply to both.
    llm_action_scope: str = Field(default="rule_candidates", pattern="^(rule_candidates|catalog)$")
    # USD per 1,000 tokens per model: {"gpt-4o-mini": {"prompt": 0.00015, "completion": 0.0006}}.
    llm_prices: dict[str, dict[str, float]] = Field(default_factory=dict)
    # -- tool-using investigation before the decision (kubernaut/analysis/tools) -----------------------------
    # off: single-shot; on: always; auto: unless the provider refused tool calls for this model before.
    llm_tools: str = Field(default="off", pattern="^(auto|on|off)$")
    llm_investigate_model: str | None = None  # a cheaper model for the tool calls; default llm_model
    llm_tool_max_calls: int = Field(default=6, ge=1, le=50)
    llm_tool_time_budget_s: float = Field(default=20.0, gt=0, le=600)  # within llm_incident_time_budget_s
    llm_tool_token_budget: int = Field(default=6000, ge=100, le=1_000_000)  # within llm_incident_token_budget
    llm_tool_call_timeout_s: float = Field(default=5.0, gt=0, le=60)
    llm_tool_output_chars: int = Field(default=3000, ge=200, le=50_000)
    # -- context --------------------------------------------------------------------------------------------
    context_time_budget_s: float = Field(default=3.0, gt=0, le=60)
    context_event_limit: int = Field(default=20, ge=0, le=500)
    recent_rollout_window_s: float = Field(default=3600.0, gt=0)  # "after a new revision" means within this
    # -- learning: measured outcomes steer the choice (kubernaut.analysis.learning) ------------------------
    learning_enabled: bool = True
    # Pseudo-cases of the rule's own score against measured outcomes: 1 lets one ineffective run of an
    # action demote it for the next incident of the same kind, while a long good record keeps it.
    learning_prior_cases: float = Field(default=1.0, ge=0, le=100)
    # An action whose estimate falls below this is not chosen again; with no alternative above it the
    # incident is escalated to a human (notify_only) with the evidence.
    learning_min_value: float = Field(default=0.5, ge=0, le=1)
    learning_time_budget_s: float = Field(default=3.0, gt=0, le=60)

    @field_validator("rules_files")
    @classmethod
    def _absolute_rules_files(cls, value: list[Path]) -> list[Path]:
        # Resolved where the YAML is read: Ray replicas run with another working directory.
        return [p.expanduser().resolve() for p in value]

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_model)

    @property
    def all_rules_files(self) -> list[Path]:
        return [*([self.rules_file] if self.rules_file else []), *self.rules_files]


class KubernetesConfig(BaseModel):
    kubeconfig: Path | None = None  # None → in-cluster, else $KUBECONFIG / ~/.kube/config
    context: str | None = None
    request_timeout_s: float = Field(default=10.0, gt=0)


# A registry host (optionally :port) and path prefix, no tag or digest: "" or "*" would allow any registry.
_REGISTRY_PREFIX = r"^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$"


class ExecutionConfig(BaseModel):
    """The executor's safety pipeline: scope, cooldown, per-target lock, blast-radius budget, retries."""

    # Live execution must be asked for explicitly.
    mode: ExecutionMode = ExecutionMode.DRY_RUN
    # Approval rehearsal (pilot/shadow mode): in dry-run, where the policy would wait for an approval live, request
    # a real one (same approvals, notifications, Slack card, escalation, checks), marked as a rehearsal; approving
    # it completes the workflow, still changing nothing. Off: a dry-run workflow completes at once (its note says
    # it would wait). The shipped serve_config.yaml turns it on so the quickstart has an approval to decide.
    dry_run_approvals: bool = False
    # Scope: namespaces managed without carrying the label (the label is the usual opt-in).
    managed_namespaces: list[str] = Field(default_factory=list)
    managed_label: str = Field(default="kubernaut.ai/managed", min_length=1, max_length=317)
    # The same action on the same target again within this window is refused (anti-oscillation).
    cooldown_s: float = Field(default=300.0, ge=0, le=7 * 86400)
    # Per-target lock: a lease in PostgreSQL, renewed while the action runs; a dead replica's lease
    # expires after lock_ttl_s. A second execution on the target waits up to lock_wait_s, then is refused.
    lock_ttl_s: float = Field(default=60.0, ge=5, le=3600)
    lock_wait_s: float = Field(default=10.0, ge=0, le=600)
    # Blast radius: live mutations per sliding window, overall and per namespace; nodes out of service.
    budget_window_s: float = Field(default=3600.0, gt=0, le=7 * 86400)
    max_mutations_per_window: int = Field(default=20, ge=0, le=100_000)
    max_mutations_per_namespace: int = Field(default=5, ge=0, le=100_000)
    max_nodes_unavailable: int = Field(default=1, ge=0, le=10_000)
    # 409 Conflict (someone else changed the object between our read and our write): re-read,
    # re-check and retry this many times with exponential backoff, then fail.
    conflict_retries: int = Field(default=3, ge=0, le=20)
    conflict_backoff_s: float = Field(default=0.5, ge=0, le=60)
    # Evictions refused by a PodDisruptionBudget (HTTP 429) are retried with this backoff, up to the cap.
    eviction_backoff_s: float = Field(default=2.0, gt=0, le=60)
    eviction_backoff_max_s: float = Field(default=15.0, gt=0, le=600)
    # Logs need a kubelet; a short timeout keeps diagnostics fast where there is none.
    log_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # Registries set_image may point a container at (host[:port][/path] prefixes of the image reference,
    # e.g. "registry.example.com/payments"). Empty: set_image is refused entirely (fail closed), whoever
    # proposes it (rules, LLM, an approver's override). Restoring a recorded image (its inverse) is not limited.
    image_registries: list[Annotated[str, Field(min_length=1, max_length=255, pattern=_REGISTRY_PREFIX)]] = Field(
        default_factory=list, max_length=100)


_CLUSTER_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class ClusterConfig(BaseModel):
    """One cluster of the fleet: how to reach it and how far Kubernaut may act on it (issue 16).

    Credentials: ``in_cluster`` (the home cluster's ServiceAccount), a ``kubeconfig`` file, a kubeconfig
    kept in a Secret of the home cluster (``kubeconfig_secret: namespace/name``, key ``kubeconfig_secret_key``),
    or only a ``context`` of the default kubeconfig. The execution fields left unset take ``execution``'s.
    """

    model_config = {"extra": "forbid"}

    name: str = Field(min_length=1, max_length=63, pattern=_CLUSTER_NAME)
    in_cluster: bool = False
    kubeconfig: Path | None = None
    kubeconfig_secret: str | None = Field(
        default=None, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")
    kubeconfig_secret_key: str = Field(default="kubeconfig", min_length=1, max_length=253)
    context: str | None = None
    request_timeout_s: float | None = Field(default=None, gt=0)
    mode: ExecutionMode | None = None
    managed_namespaces: list[str] | None = None
    max_mutations_per_window: int | None = Field(default=None, ge=0, le=100_000)
    max_mutations_per_namespace: int | None = Field(default=None, ge=0, le=100_000)
    max_nodes_unavailable: int | None = Field(default=None, ge=0, le=10_000)

    @model_validator(mode="after")
    def _one_credential(self) -> ClusterConfig:
        given = [n for n, v in (("in_cluster", self.in_cluster), ("kubeconfig", self.kubeconfig),
                                ("kubeconfig_secret", self.kubeconfig_secret)) if v]
        if len(given) > 1:
            raise ValueError(f"cluster {self.name}: give one of in_cluster, kubeconfig, kubeconfig_secret, not {given}")
        return self

    def execution_for(self, base: ExecutionConfig) -> ExecutionConfig:
        fields = ("mode", "managed_namespaces", "max_mutations_per_window", "max_mutations_per_namespace",
                  "max_nodes_unavailable")
        return base.model_copy(update={f: getattr(self, f) for f in fields if getattr(self, f) is not None})


class FleetConfig(BaseModel):
    """Many clusters from one Kubernaut. Empty ``clusters``: one cluster named ``cluster_name``, reached with
    ``kubernetes`` and acted on with ``execution`` (a single-cluster install is unchanged)."""

    model_config = {"extra": "forbid"}

    # The alert label naming the cluster (AlertManager's usual external label); alerts without it belong
    # to default_cluster (None: cluster_name). An alert naming a cluster not listed is never acted on.
    cluster_label: str = Field(default="cluster", min_length=1, max_length=63)
    default_cluster: str | None = Field(default=None, max_length=63, pattern=_CLUSTER_NAME)
    clusters: list[ClusterConfig] = Field(default_factory=list, max_length=500)
    # A cluster whose API server failed this many calls in a row is skipped for circuit_reset_s.
    circuit_failures: int = Field(default=3, ge=1, le=100)
    circuit_reset_s: float = Field(default=30.0, gt=0, le=3600)
    # How often a kubeconfig file or Secret is checked for changes (hot reload of credentials).
    reload_interval_s: float = Field(default=15.0, gt=0, le=3600)
    # Learning in a fleet counts the incident's own cluster first; the other clusters' record of the same
    # signature weighs as at most this many cases (what worked elsewhere informs, never outvotes).
    prior_cases: float = Field(default=2.0, ge=0, le=100)
    # An incident of a cluster whose API server does not answer waits (its analysis is retried) and is escalated,
    # with a notification naming the cluster, once the cluster has not answered for this long.
    unreachable_escalate_after_s: float = Field(default=300.0, ge=1, le=7 * 86400)

    @field_validator("clusters")
    @classmethod
    def _unique(cls, value: list[ClusterConfig]) -> list[ClusterConfig]:
        names = [c.name for c in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"fleet.clusters: duplicate name(s) {dupes}")
        return value


class ApprovalRulesConfig(BaseModel):
    """Who must agree before a remediation runs (kubernaut/orchestration/approvals.py)."""

    model_config = {"extra": "forbid"}

    # Risk levels (the action's declared risk, raised by its parameters) that need two distinct approvers;
    # a level listed covers every level above it ([high] also covers critical).
    two_person_for: list[Literal["low", "medium", "high", "critical"]] = Field(default_factory=list)


class OrchestrationConfig(BaseModel):
    """How analyses become changes: policy, approvals, verification, rollback and blocking rules."""

    approvals: ApprovalRulesConfig = Field(default_factory=ApprovalRulesConfig)

    policy_file: Path | None = None  # None → the packaged policy (kubernaut/orchestration/policy.yaml)
    approval_ttl_s: float = Field(default=900.0, ge=10, le=7 * 86400)  # expired approvals escalate
    stabilization_s: float = Field(default=300.0, ge=0, le=86400)  # wait after execute, before verify
    verify_timeout_s: float = Field(default=600.0, ge=1, le=86400)  # "cannot tell yet" for longer → failed
    verify_interval_s: float = Field(default=15.0, ge=0.1, le=3600)
    step_timeout_s: float = Field(default=120.0, ge=1, le=3600)
    step_max_attempts: int = Field(default=4, ge=1, le=20)  # transient errors, exponential backoff
    # Autonomy from evidence: run unattended only when the Wilson lower bound of the measured success
    # rate for (signal, action) is at least this, on at least this many cases.
    autonomy_min_cases: int = Field(default=5, ge=0, le=10_000)
    autonomy_min_lower_bound: float = Field(default=0.8, ge=0, le=1)
    # Blocking rules (orchestration/blocking.py): cooldown, consecutive failures, ineffective chains, oscillation.
    cooldown_s: float = Field(default=300.0, ge=0, le=86400)
    failure_block_after: int = Field(default=3, ge=1, le=100)
    failure_block_s: float = Field(default=3600.0, ge=0, le=7 * 86400)
    ineffective_chain: int = Field(default=3, ge=1, le=100)
    oscillation_window_s: float = Field(default=3600.0, ge=0, le=7 * 86400)
    max_concurrent_workflows: int = Field(default=100, ge=1, le=10_000)
    # The environment the policy applies to an incident whose namespace declares none (no environment
    # label, no hint in its name): production rules unless set otherwise, so an unlabelled production
    # namespace keeps production's safeguards.
    unknown_environment: str = Field(default="production", min_length=1, max_length=63,
                                     pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class MetricQuery(BaseModel):
    """One before/after PromQL measurement. Placeholders: {namespace}, {name}, {kind} (PromQL-escaped) and
    {pod_regex} (a regex matching the target's pods). Queries that return nothing are not counted."""

    model_config = {"extra": "forbid"}

    name: str = Field(min_length=1, max_length=63)
    query: str = Field(min_length=1, max_length=2000)
    better: Literal["lower", "higher"] = "lower"


def _default_metric_queries() -> list[MetricQuery]:
    # Conventional metric names (cAdvisor, http_requests_total, http_request_duration_seconds).
    return [
        MetricQuery(name="error_rate", query='sum(rate(http_requests_total{namespace="{namespace}",'
                    'pod=~"{pod_regex}",code=~"5.."}[5m])) / sum(rate(http_requests_total{namespace="{namespace}",'
                    'pod=~"{pod_regex}"}[5m]))'),
        MetricQuery(name="latency_p95", query='histogram_quantile(0.95, sum by (le) (rate('
                    'http_request_duration_seconds_bucket{namespace="{namespace}",pod=~"{pod_regex}"}[5m])))'),
        MetricQuery(name="cpu", query='sum(rate(container_cpu_usage_seconds_total{namespace="{namespace}",'
                    'pod=~"{pod_regex}",container!=""}[5m]))'),
        MetricQuery(name="memory", query='sum(container_memory_working_set_bytes{namespace="{namespace}",'
                    'pod=~"{pod_regex}",container!=""})'),
    ]


class EffectivenessConfig(BaseModel):
    """How executed actions are scored after the stabilization window (orchestration.stabilization_s)."""

    # An assessment not completed this long after it became due is closed with what was measured.
    validity_s: float = Field(default=1800.0, ge=1, le=7 * 86400)
    # AlertManager API v2 base URL (e.g. http://alertmanager:9093); None → only resolved webhooks count.
    alertmanager_url: str | None = None
    alertmanager_token: SecretStr | None = None
    # Prometheus HTTP API base URL (e.g. http://prometheus:9090); None → no metrics component.
    prometheus_url: str | None = None
    prometheus_token: SecretStr | None = None
    metric_queries: list[MetricQuery] = Field(default_factory=_default_metric_queries)
    http_timeout_s: float = Field(default=5.0, gt=0, le=120)
    kube_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # Weights of the measured components (effectiveness/scoring.py); renormalized over those actually measured.
    weight_health: float = Field(default=0.40, ge=0, le=1)
    weight_alert: float = Field(default=0.35, ge=0, le=1)
    weight_metrics: float = Field(default=0.25, ge=0, le=1)
    effective_threshold: float = Field(default=0.7, ge=0, le=1)  # score ≥ this → effective
    ineffective_threshold: float = Field(default=0.5, ge=0, le=1)  # score < this → ineffective
    # Transient failures (AlertManager, Prometheus, API server) retry with backoff until the validity ends.
    retry_initial_s: float = Field(default=2.0, gt=0, le=600)
    retry_max_s: float = Field(default=60.0, gt=0, le=3600)
    # How often a replica looks for executed actions that have no assessment job yet (safety net).
    sweep_interval_s: float = Field(default=10.0, gt=0, le=3600)


class IntelligenceConfig(BaseModel):
    """Pattern mining and similar-incident search over the history in PostgreSQL."""

    # hashing: dependency-free hashed features; minilm: the `embeddings` extra; openai: any compatible endpoint.
    embedding_provider: Literal["hashing", "minilm", "openai"] = "hashing"
    embedding_model: str | None = None  # openai: e.g. text-embedding-3-small (asked for 384 dimensions)
    embedding_base_url: str | None = None
    embedding_api_key: SecretStr | None = None
    embedding_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # Periodic mining: one round at most every interval, each batch its own short transaction.
    mining_interval_s: float = Field(default=30.0, ge=0.1, le=86400)
    mining_batch: int = Field(default=50_000, ge=100, le=1_000_000)
    mining_round_budget_s: float = Field(default=20.0, gt=0, le=600)  # then the round yields and resumes
    pattern_window_s: float = Field(default=30 * 86400.0, gt=0)  # history the pattern queries look at
    recurring_min: int = Field(default=3, ge=2, le=1000)  # incidents of one workload + signature
    chain_length: int = Field(default=3, ge=2, le=100)  # consecutive ineffective actions on one target
    oscillation_window_s: float = Field(default=3600.0, gt=0)
    harmful_window_s: float = Field(default=1800.0, gt=0)  # a new alert this soon after an action follows it
    harmful_min_cases: int = Field(default=5, ge=1)
    # Similar incidents: HNSW search breadth (recall vs latency) and the weakest neighbour worth showing.
    hnsw_ef_search: int = Field(default=100, ge=1, le=1000)
    similar_min_similarity: float = Field(default=0.5, ge=-1, le=1)
    # Ranking: weight of the neutral prior (pseudo-cases at 0.5) against measured outcomes.
    ranking_prior_cases: float = Field(default=2.0, ge=0, le=100)


class HolmesConfig(BaseModel):
    """An optional HolmesGPT server asked for a second opinion (``POST {url}/api/investigate``).

    Its answer is untrusted text: stored and shown, never parsed for actions. The token belongs in the
    environment (``KUBERNAUT_HOLMES__TOKEN``), never in YAML.
    """

    url: str | None = Field(default=None, description="HolmesGPT base URL (http/https); None disables it")
    token: SecretStr | None = Field(default=None, description="sent as 'Authorization: Bearer <token>'")
    timeout_s: float = Field(default=60.0, gt=0, le=600, description="hard limit on one whole call, queueing included")
    max_chars: int = Field(default=8000, ge=100, le=200_000, description="longer analyses are truncated")
    in_analysis: bool = Field(default=False, description="ask for a second opinion on every new incident")
    max_concurrent: int = Field(default=2, ge=1, le=100, description="calls in flight per replica")
    breaker_failures: int = Field(default=3, ge=1, le=100, description="consecutive failures that stop calls")
    breaker_reset_s: float = Field(default=60.0, gt=0, le=3600, description="then one trial call after this")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from urllib.parse import urlsplit

        parsed = urlsplit(value.strip())
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"holmes.url must be an http:// or https:// URL with a host, got {value!r}")
        return value.strip().rstrip("/")

    @property
    def enabled(self) -> bool:
        return self.url is not None


class NotificationsConfig(RoutingMixin):  # receivers, route tree, Slack app, escalation: config/notifications.py
    # apprise URLs (slack://, msteams://, mailto://, json://, pagerduty:// ...); empty → log only.
    urls: list[SecretStr] = Field(default_factory=list)
    timeout_s: float = Field(default=15.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=50)


class JobKindConfig(BaseModel):
    """Retries of one job kind (``work.kinds.<kind>``); unset fields take the ``work`` defaults."""

    model_config = {"extra": "forbid"}

    max_attempts: int | None = Field(default=None, ge=1, le=100)
    backoff_initial_s: float | None = Field(default=None, gt=0, le=3600)
    backoff_max_s: float | None = Field(default=None, gt=0, le=86400)


DEFAULT_SECRET_WORDS = [
    r"passw(?:or)?d", r"pwd", r"secret", r"token", r"api[-_.]?key", r"access[-_.]?key", r"private[-_.]?key",
    r"credentials?", r"auth(?:orization)?$", r"session[-_.]?id", r"cookie", r"dsn",
    r"connection[-_.]?string",
]
DEFAULT_ANNOTATION_PATTERNS = [
    "kubectl.kubernetes.io/last-applied-configuration", "*password*", "*passwd*", "*secret*", "*token*",
    "*credential*", "*apikey*", "*api-key*", "*api_key*", "*private-key*",
]


class RedactionConfig(BaseModel):
    """What ``kubernaut.cluster.redaction`` hides in action records, diffs, diagnostics and notifications.
    Lists replace the defaults: extend them rather than drop entries."""

    model_config = {"extra": "forbid"}

    # Regular expressions (case-insensitive, searched) for names whose values are secret: flag names
    # (--db-password), key=value keys (api_key=...) and dict keys (password: ...).
    secret_words: list[str] = Field(default_factory=lambda: list(DEFAULT_SECRET_WORDS), max_length=200)
    # Shell-style patterns (case-insensitive) of annotation keys whose values are redacted.
    annotation_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_ANNOTATION_PATTERNS),
                                           max_length=200)
    # Extra regular expressions for text; every match is replaced whole (e.g. "AKIA[0-9A-Z]{16}").
    text_patterns: list[str] = Field(default_factory=list, max_length=200)

    @field_validator("secret_words", "text_patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {pattern!r}: {exc}") from None
        return value


class WorkConfig(BaseModel):
    """Durable work queue: how deployments claim work from the database.

    A job that fails is retried after backoff_initial_s, then twice as long each time up to backoff_max_s;
    after max_attempts failures in a row it is a dead letter (``GET /api/v1/jobs?state=dead``) until replayed.
    A holder renews its lease every lease_s * heartbeat_fraction while it works.
    """

    poll_interval_s: float = Field(default=2.0, gt=0, le=60)
    lease_s: float = Field(default=60.0, ge=1, le=3600)
    heartbeat_fraction: float = Field(default=1 / 3, gt=0, le=0.5)
    max_attempts: int = Field(default=5, ge=1, le=100)
    backoff_initial_s: float = Field(default=2.0, gt=0, le=3600)
    backoff_max_s: float = Field(default=300.0, gt=0, le=86400)
    batch_size: int = Field(default=20, ge=1, le=1000)
    # Per job kind: the names of kubernaut.models.jobs.JobKind (analyze, second_opinion, workflow, notify, assess,
    # embed, mine, retention).
    kinds: dict[str, JobKindConfig] = Field(default_factory=dict)

    @field_validator("kinds")
    @classmethod
    def _known_kind_names(cls, value: dict[str, JobKindConfig]) -> dict[str, JobKindConfig]:
        declared = [k.value for k in JobKind]
        for kind in value:
            if not kind or len(kind) > 63 or not kind.replace("_", "").isalnum() or not kind.islower():
                raise ValueError(f"work.kinds: {kind!r} is not a job kind name (lower-case letters and _)")
            if kind in RETIRED:
                raise ValueError(f"work.kinds: {kind!r} is no longer a job kind: its jobs are "
                                 f"{RETIRED[kind].value!r} jobs now (set work.kinds.{RETIRED[kind].value})")
            if kind not in declared:
                raise ValueError(f"work.kinds: {kind!r} is not a job kind name (declared: {', '.join(declared)})")
        return value

    def retry_policy(self, kind: JobKind | str) -> tuple[int, float, float]:
        """(max_attempts, backoff_initial_s, backoff_max_s) of ``kind``: ``work.kinds.<kind>``, else the kind's
        own defaults (kubernaut.models.jobs), else the ``work`` defaults."""
        name = JobKind(kind)
        own = self.kinds.get(name.value) or JobKindConfig()
        declared = name.spec.retry
        return (own.max_attempts or declared.max_attempts or self.max_attempts,
                own.backoff_initial_s or declared.backoff_initial_s or self.backoff_initial_s,
                own.backoff_max_s or declared.backoff_max_s or self.backoff_max_s)


class KubernautConfig(BaseSettings):
    """Everything the application needs; one instance is built by ``kubernaut.app:build``."""

    model_config = SettingsConfigDict(
        env_prefix="KUBERNAUT_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    cluster_name: str = Field(default="local", max_length=63)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)  # the web console (issue 13)
    mcp: McpConfig = Field(default_factory=McpConfig)  # the MCP server at /mcp (issue 16)
    processing: ProcessingConfig = Field(default_factory=ProcessingConfig)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    fleet: FleetConfig = Field(default_factory=FleetConfig)
    orchestration: OrchestrationConfig = Field(default_factory=OrchestrationConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    effectiveness: EffectivenessConfig = Field(default_factory=EffectivenessConfig)
    intelligence: IntelligenceConfig = Field(default_factory=IntelligenceConfig)
    holmes: HolmesConfig = Field(default_factory=HolmesConfig)
    gitops: GitOpsConfig = Field(default_factory=GitOpsConfig)  # GitOps-aware remediation (issue 15)
    redaction: RedactionConfig = Field(default_factory=RedactionConfig)
    work: WorkConfig = Field(default_factory=WorkConfig)
    deployments: dict[str, DeploymentConfig] = Field(default_factory=_default_deployments)
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")

    @field_validator("deployments")
    @classmethod
    def _known_deployments(cls, value: dict[str, DeploymentConfig]) -> dict[str, DeploymentConfig]:
        defaults = _default_deployments()
        unknown = sorted(set(value) - set(defaults))
        if unknown:
            raise ValueError(f"unknown deployment(s) {unknown}; known: {sorted(defaults)}")
        return {**defaults, **value}

    @property
    def dry_run(self) -> bool:
        return self.execution.mode is ExecutionMode.DRY_RUN

    @property
    def home_cluster(self) -> str:
        """The cluster of alerts without the fleet's cluster label."""
        return self.fleet.default_cluster or self.cluster_name

    def clusters(self) -> list[ClusterConfig]:
        """The fleet (``fleet.clusters``), or the one cluster of a single-cluster config."""
        if self.fleet.clusters:
            return list(self.fleet.clusters)
        # model_construct: cluster_name predates the name pattern of fleet entries and keeps its own rules.
        return [ClusterConfig.model_construct(name=self.cluster_name, kubeconfig=self.kubernetes.kubeconfig,
                              context=self.kubernetes.context)]


def load_config(args: dict[str, Any] | None = None) -> KubernautConfig:
    """Build the config from serve_config args and the environment, resolving local paths once.

    Paths are made absolute here, in the process that reads the YAML, because Ray replicas run
    with another working directory.
    """
    config = KubernautConfig(**(args or {}))
    if config.storage.dsn is None and os.environ.get("DATABASE_URL"):
        config.storage.dsn = SecretStr(os.environ["DATABASE_URL"])
    config.storage.data_dir = config.storage.data_dir.expanduser().resolve()
    if config.analysis.rules_file is not None:
        config.analysis.rules_file = config.analysis.rules_file.expanduser().resolve()
    if config.kubernetes.kubeconfig is not None:
        config.kubernetes.kubeconfig = config.kubernetes.kubeconfig.expanduser().resolve()
    for cluster in config.fleet.clusters:
        if cluster.kubeconfig is not None:
            cluster.kubeconfig = cluster.kubeconfig.expanduser().resolve()
    return config
