"""The LLM decision path: budgets, corrective re-asks, escalation, circuit breaker, validation.

Whatever happens here, the caller gets either a validated decision or the reason there is none;
the rule engine's decision (already computed) is then used, and the record says why.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from openai import AsyncOpenAI

from kubernaut.analysis.allowed_targets import allowed_targets
from kubernaut.analysis.facts import Situation
from kubernaut.analysis.llm.client import ProviderError, ToolTurn, chat_with_tools, complete
from kubernaut.analysis.llm.context_window import ContextWindows
from kubernaut.analysis.llm.investigation import ContextFull, Investigation, PhaseTimeUp, investigate
from kubernaut.analysis.llm.metrics import LLMMetrics
from kubernaut.analysis.llm.providers import bounded_strings, estimate_cost, make_client, response_format
from kubernaut.analysis.llm_answer import DecisionRejected, json_schema, parse, to_result
from kubernaut.analysis.prompt import build_prompt, repair_message
from kubernaut.analysis.prompt_fit import estimate_tokens
from kubernaut.analysis.rules import RuleOutcome
from kubernaut.analysis.tools.registry import ToolRegistry
from kubernaut.breaker import BreakerState, CircuitBreaker
from kubernaut.config.settings import AnalysisConfig
from kubernaut.execution.catalog import ACTION_NAMES, get_action
from kubernaut.models.analysis import AnalysisResult, LLMUsage
from kubernaut.models.resource import ResourceRef
from kubernaut.storage import llm_budget

logger = logging.getLogger(__name__)

# Below this many completion tokens a structured answer cannot fit; do not start a call that cannot succeed.
MIN_COMPLETION_TOKENS = 64
# Characters per token, conservatively low so the prompt estimate errs on the high side.
_CHARS_PER_TOKEN = 3.0
# How long a call may wait for the global budget store; past it the LLM is not used (fail closed).
_BUDGET_STORE_TIMEOUT_S = 2.0


@dataclass
class LLMOutcome:
    result: AnalysisResult | None
    usage: LLMUsage
    failure: str | None = None
    flags: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Budget:
    tokens_left: int
    deadline: float

    def time_left(self) -> float:
        return self.deadline - time.monotonic()


class _Stop(Exception):
    """The whole LLM phase ends now (budget spent, breaker open): no further model is tried."""


class _NoTools(Exception):
    """The provider refused a request with tools (HTTP 4xx): this model answers single-shot."""


class GlobalBudget:
    """``analysis.llm_tokens_per_minute`` / ``llm_tokens_per_day`` across all replicas, kept in PostgreSQL.

    Each call reserves its worst case before it starts and settles to what it used afterwards. Without a
    reachable store the budget cannot be enforced, so the LLM is not used (fail closed): the rules decide.
    """

    def __init__(self, cfg: AnalysisConfig, pool: asyncpg.Pool | None) -> None:
        self.per_minute, self.per_day = cfg.llm_tokens_per_minute, cfg.llm_tokens_per_day
        self.pool = pool

    @property
    def limited(self) -> bool:
        return self.per_minute is not None or self.per_day is not None

    def snapshot(self) -> dict[str, object]:
        return {"tokens_per_minute": self.per_minute, "tokens_per_day": self.per_day,
                "store": None if not self.limited else ("postgresql" if self.pool is not None else "missing")}

    async def reserve(self, want: int, need: int, time_left: float) -> llm_budget.Reservation | None:
        """A reservation of ``need``..``want`` tokens; None when unlimited; raises _Stop when refused."""
        if not self.limited:
            return None
        if self.pool is None:
            raise _Stop("global LLM budget store unreachable (no database configured for it); "
                        "the LLM is not used without it")
        timeout = max(0.05, min(_BUDGET_STORE_TIMEOUT_S, time_left))
        try:
            reservation, used = await asyncio.wait_for(
                llm_budget.reserve(self.pool, want=want, need=need, per_minute=self.per_minute,
                                   per_day=self.per_day, acquire_timeout_s=timeout), timeout=timeout)
        except (asyncio.TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            logger.warning("global LLM budget store unreachable: %r", exc)
            raise _Stop(f"global LLM budget store unreachable ({type(exc).__name__}: {exc or 'timed out'}); "
                        "the LLM is not used without it") from None
        if reservation is None:
            spent = []
            if self.per_minute is not None:
                spent.append(f"{used.minute} of {self.per_minute} tokens this minute")
            if self.per_day is not None:
                spent.append(f"{used.day} of {self.per_day} tokens today")
            raise _Stop(f"global LLM budget exhausted ({', '.join(spent)} used; this call needs ~{need})")
        return reservation

    async def settle(self, reservation: llm_budget.Reservation | None, used: int) -> None:
        if reservation is None or self.pool is None:
            return
        try:
            await asyncio.wait_for(llm_budget.settle(self.pool, reservation, used, _BUDGET_STORE_TIMEOUT_S),
                                   timeout=_BUDGET_STORE_TIMEOUT_S)
        except (asyncio.TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # The reservation stays charged: the budget errs on the spent side.
            logger.warning("global LLM budget not settled (%d reserved, %d used): %r", reservation.tokens, used, exc)


def allowed_actions(cfg: AnalysisConfig, outcome: RuleOutcome, targets: list[ResourceRef]) -> list[str]:
    """The menu for this incident, the rules' choice first; each action must fit some in-scope target."""
    names = sorted(outcome.candidates) if cfg.llm_action_scope == "rule_candidates" else list(ACTION_NAMES)
    forbidden = {n for g in outcome.guards for n in g.forbid}
    kinds = {t.kind for t in targets}
    fits = [n for n in names if n not in forbidden
            and (get_action(n).any_kind or kinds & set(get_action(n).target_kinds))]
    first = outcome.result.action
    return ([first] if first in fits else []) + [n for n in fits if n != first]


class LLMAnalyzer:
    def __init__(self, cfg: AnalysisConfig, client: AsyncOpenAI | None = None,
                 breaker: CircuitBreaker | None = None, metrics: LLMMetrics | None = None,
                 budget_pool: asyncpg.Pool | None = None, tools: ToolRegistry | None = None,
                 tool_scope: Callable[[Situation], Any] | None = None) -> None:
        if not cfg.llm_model:
            raise ValueError("LLMAnalyzer needs analysis.llm_model")
        self.cfg = cfg
        self.client = client or make_client(cfg)
        self.breaker = breaker or CircuitBreaker(cfg.llm_breaker_failures, cfg.llm_breaker_reset_s)
        self.metrics = metrics or LLMMetrics()
        self.mode = response_format(cfg)
        self.models = [cfg.llm_model] + ([cfg.llm_escalation_model] if cfg.llm_escalation_model else [])
        self.global_budget = GlobalBudget(cfg, budget_pool)
        # The investigation's tools and, per incident, what they may see (kubernaut/analysis/tools).
        self.tools = tools
        self.tool_scope = tool_scope
        self.investigate_model = cfg.llm_investigate_model or cfg.llm_model
        self._no_tools: dict[str, str] = {}  # model → why the provider refused tool calls (auto mode)
        self.windows = ContextWindows(cfg, self.client)

    def status(self) -> dict[str, object]:
        return {
            "enabled": True, "provider": self.cfg.llm_provider, "base_url": self.cfg.llm_base_url,
            "models": self.models, "response_format": self.mode, "circuit": self.breaker.snapshot(),
            "available": self.breaker.state is not BreakerState.OPEN, "global_budget": self.global_budget.snapshot(),
            "context_windows": self.windows.snapshot(),
            "tools": {"mode": self.cfg.llm_tools, "enabled": self._tools_wanted(),
                      "available": sorted(self.tools.tools) if self.tools else [],
                      "investigate_model": self.investigate_model, "refused_by": dict(self._no_tools)},
            **self.metrics.snapshot(),
        }

    def _tools_wanted(self) -> bool:
        if self.tools is None or self.tool_scope is None or self.cfg.llm_tools == "off":
            return False
        return self.cfg.llm_tools == "on" or self.investigate_model not in self._no_tools

    async def analyze(self, situation: Situation, outcome: RuleOutcome) -> LLMOutcome:
        cfg = self.cfg
        usage = LLMUsage(provider=cfg.llm_provider, model=self.models[0], response_format=self.mode)
        result = LLMOutcome(result=None, usage=usage)
        targets = allowed_targets(situation)
        actions = allowed_actions(cfg, outcome, targets)
        forbidden = {name: g.reason for g in outcome.guards for name in g.forbid}
        schema = json_schema(actions, targets, bounded_strings=bounded_strings(cfg))
        window = await self.windows.get(self.models[0])
        prompt = build_prompt(situation, outcome, actions, targets,
                              None if window is None else window - cfg.llm_max_completion_tokens
                              - self._schema_tokens(schema))
        if prompt.trimmed:
            result.notes.append(f"prompt trimmed to fit {self.models[0]}'s {window}-token context: "
                                + ", ".join(prompt.trimmed))
        messages = prompt.messages
        budget = _Budget(cfg.llm_incident_token_budget, time.monotonic() + cfg.llm_incident_time_budget_s)
        try:
            if self._tools_wanted():
                investigation = await self._investigate(situation, messages, budget, result)
                if investigation is not None and investigation.misbehaved:
                    # Possibly steered by hostile data: this model does not decide this incident.
                    result.flags.append(f"llm:{self.investigate_model} investigation: {investigation.misbehaved}")
                    raise _Stop(f"investigation ended: {investigation.misbehaved}")
                if investigation is not None and (investigation.outputs or investigation.summary):
                    user = messages[-1]["content"]
                    head, _, tail = user.rpartition("\n\n")
                    messages = [*messages[:-1], {"role": "user",
                                                 "content": f"{head}\n\n{investigation.evidence_block()}\n\n{tail}"}]
            for index, model in enumerate(self.models):
                if index > 0:
                    usage.escalated = True
                    result.notes.append(f"escalated to {model}")
                usage.models.append(model)
                decision, failure = await self._ask(model, list(messages), schema, actions, targets, forbidden,
                                                    budget, result)
                if decision is None:
                    result.failure = failure
                    if result.result is not None:
                        result.notes.append(f"escalation to {model} failed ({failure}); kept {usage.model}'s answer")
                    continue
                result.result, usage.model, result.failure = decision, model, None
                if decision.confidence >= cfg.llm_escalation_below_confidence:
                    break
                if index + 1 < len(self.models):
                    result.notes.append(f"{model} confidence {decision.confidence:.2f} below "
                                        f"{cfg.llm_escalation_below_confidence:.2f}")
        except _Stop as stop:
            if result.result is None:
                result.failure = str(stop)
            else:
                result.notes.append(f"escalation stopped: {stop}")
        finally:
            self.metrics.breaker_open(self.breaker.state is BreakerState.OPEN)
        usage.cost_usd = estimate_cost(cfg, usage.model, usage.prompt_tokens, usage.completion_tokens)
        return result

    async def _investigate(self, situation: Situation, messages: list[dict[str, str]], budget: _Budget,
                           out: LLMOutcome) -> Investigation | None:
        """The tool loop; its calls and tokens are recorded in ``out.usage``. None when the provider refused
        tools (this model then answers single-shot)."""
        assert self.tools is not None and self.tool_scope is not None
        usage, model = out.usage, self.investigate_model

        async def chat(model: str, conversation: list[dict[str, Any]], tools: list[dict[str, Any]],
                       max_tokens: int, time_left: float) -> ToolTurn:
            return await self._tool_turn(model, conversation, tools, max_tokens, time_left, budget)

        def tokens_left() -> int:
            return budget.tokens_left - int(len(json.dumps(messages)) / _CHARS_PER_TOKEN) - MIN_COMPLETION_TOKENS

        investigation = Investigation()
        try:
            await investigate(self.cfg, chat, model, self.tools, self.tool_scope(situation), messages,
                              time_left=budget.time_left, tokens_left=tokens_left, out=investigation)
        except _NoTools as refused:
            if self.cfg.llm_tools == "auto":
                self._no_tools[model] = str(refused)
            usage.investigation = f"the provider refused tool calls for {model} ({refused}); single-shot"
            return None
        finally:
            usage.calls += investigation.calls
            usage.prompt_tokens += investigation.prompt_tokens
            usage.completion_tokens += investigation.completion_tokens
            usage.latency_ms += investigation.latency_ms
            usage.tool_calls = investigation.records
        usage.investigation = investigation.ended
        out.notes.append(f"investigation by {model}: {len(investigation.records)} tool call(s), {investigation.ended}")
        return investigation

    async def _tool_turn(self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
                         max_tokens: int, time_left: float, budget: _Budget) -> ToolTurn:
        """One investigation call under the same budgets, global budget and breaker as a decision call."""
        window = await self.windows.get(model)
        if window is not None:
            # A request longer than the window is refused (a 400, which would read as "no tool calls").
            in_window = estimate_tokens(messages) + int(len(json.dumps(tools)) / _CHARS_PER_TOKEN)
            if window - in_window < 32:
                raise ContextFull(f"the conversation (~{in_window} tokens) filled {model}'s {window}-token context")
            max_tokens = min(max_tokens, window - in_window)
        prompt_estimate = int(len(json.dumps(messages, default=str)) / _CHARS_PER_TOKEN)
        reservation = await self.global_budget.reserve(prompt_estimate + max_tokens, prompt_estimate + 32, time_left)
        if reservation is not None:
            max_tokens = max(16, reservation.tokens - prompt_estimate)
        await self._admit(reservation)
        try:
            turn = await asyncio.wait_for(
                chat_with_tools(self.client, model=model, messages=messages, tools=tools, max_tokens=max_tokens,
                                timeout_s=min(self.cfg.llm_request_timeout_s, time_left),
                                temperature=self.cfg.llm_temperature), timeout=time_left)
        except asyncio.TimeoutError:
            if budget.time_left() <= 0.05:
                raise self._timed_out(model) from None
            # The investigation's own time budget cut the turn, not the incident's: no verdict on the provider,
            # and the decision still gets the time that is left.
            self.breaker.release()
            await self.global_budget.settle(reservation, prompt_estimate)
            raise PhaseTimeUp(f"tool time budget of {self.cfg.llm_tool_time_budget_s:g}s spent "
                              f"(a turn of {model} was cut off)") from None
        except ProviderError as exc:
            await self.global_budget.settle(reservation, 0)
            if exc.kind == "rejected":
                self.breaker.record_success()  # it answered: the request, not the provider, is the problem
                self.metrics.call(model, "rejected")
                raise _NoTools(str(exc)) from None
            self.breaker.record_failure(str(exc))
            self.metrics.call(model, exc.kind)
            raise _Stop(f"provider error from {model}: {exc}") from None
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.record_success()
        used = turn.prompt_tokens + turn.completion_tokens
        await self.global_budget.settle(reservation, used)
        budget.tokens_left -= used
        self.metrics.call(model, "tool_turn", turn.prompt_tokens, turn.completion_tokens, turn.latency_ms)
        return turn

    async def _admit(self, reservation: llm_budget.Reservation | None) -> None:
        """The breaker's leave for one call; refused: the reservation is given back and the LLM phase ends."""
        if not self.breaker.allow():
            await self.global_budget.settle(reservation, 0)
            snap = self.breaker.snapshot()
            raise _Stop(f"circuit breaker open after {snap['consecutive_failures']} provider failures "
                        f"({snap['last_error']}); retry in {snap['retry_in_s'] or 0:.0f}s")

    def _timed_out(self, model: str) -> _Stop:
        """Slow beyond the budget is a provider failure: enough of them open the breaker."""
        self.breaker.record_failure("timeout: slower than the time budget")
        self.metrics.call(model, "timeout")
        return _Stop(f"{model} did not answer within the time budget of {self.cfg.llm_incident_time_budget_s:g}s")

    def _schema_tokens(self, schema: dict[str, object]) -> int:
        """In ``tools`` mode the schema is a tool definition, part of the prompt the model reads."""
        return int(len(json.dumps(schema)) / _CHARS_PER_TOKEN) if self.mode == "tools" else 0

    async def _ask(self, model: str, messages: list[dict[str, str]], schema: dict[str, object], actions: list[str],
                   targets: list[ResourceRef], forbidden: dict[str, str], budget: _Budget, out: LLMOutcome
                   ) -> tuple[AnalysisResult | None, str]:
        """Ask ``model`` once plus up to llm_max_repairs corrective re-asks; (decision, '') or (None, why)."""
        cfg, usage = self.cfg, out.usage
        problem = "no answer"
        base = list(messages)
        for attempt in range(1 + cfg.llm_max_repairs):
            time_left = budget.time_left()
            if time_left <= 0.05:
                raise _Stop(f"time budget of {cfg.llm_incident_time_budget_s:g}s exhausted")
            prompt_estimate = int(len(json.dumps(messages)) / _CHARS_PER_TOKEN)
            max_tokens = min(cfg.llm_max_completion_tokens, budget.tokens_left - prompt_estimate)
            if max_tokens < MIN_COMPLETION_TOKENS:
                if attempt:  # the answers spent it: say what was wrong with them, not only that the budget ran out
                    return None, (f"{model} gave no valid answer in {attempt} attempts (no token budget left for "
                                  f"another: {cfg.llm_incident_token_budget} per incident); last problem: {problem}")
                raise _Stop(f"token budget exhausted ({cfg.llm_incident_token_budget} per incident; "
                            f"prompt needs ~{prompt_estimate})")
            window = await self.windows.get(model)
            if window is not None:
                # The server refuses a prompt plus completion longer than its window: ask only what fits.
                in_window = estimate_tokens(messages) + self._schema_tokens(schema)
                if window - in_window < MIN_COMPLETION_TOKENS:
                    raise _Stop(f"the prompt (~{in_window} tokens, trimmed) does not fit {model}'s "
                                f"{window}-token context with room for an answer")
                max_tokens = min(max_tokens, window - in_window)
            # The global budget (all replicas) bounds this call's completion as the incident's budget does.
            reservation = await self.global_budget.reserve(prompt_estimate + max_tokens,
                                                           prompt_estimate + MIN_COMPLETION_TOKENS, time_left)
            if reservation is not None:
                max_tokens = reservation.tokens - prompt_estimate
            await self._admit(reservation)
            try:
                completion = await asyncio.wait_for(
                    complete(self.client, model=model, messages=messages, schema=schema, mode=self.mode,
                             strict=cfg.llm_strict_schema, max_tokens=max_tokens,
                             timeout_s=min(cfg.llm_request_timeout_s, time_left), temperature=cfg.llm_temperature),
                    timeout=time_left,
                )
            except asyncio.TimeoutError:
                raise self._timed_out(model) from None
            except ProviderError as exc:
                # The provider refused or was unreachable: it generated nothing to charge.
                await self.global_budget.settle(reservation, 0)
                if exc.kind == "rejected":  # it answered, about this request (e.g. longer than its context)
                    self.breaker.record_success()
                else:
                    self.breaker.record_failure(str(exc))
                self.metrics.call(model, exc.kind)
                # The SDK already retried transport errors; the next model is no closer to the provider.
                raise _Stop(f"provider error from {model}: {exc}") from None
            except BaseException:
                # Cancelled (replica shutting down, caller gone): no verdict on the provider, but a
                # half-open trial must not stay reserved forever.
                self.breaker.release()
                raise
            self.breaker.record_success()
            await self.global_budget.settle(reservation, completion.prompt_tokens + completion.completion_tokens)
            usage.calls += 1
            usage.prompt_tokens += completion.prompt_tokens
            usage.completion_tokens += completion.completion_tokens
            usage.latency_ms += completion.latency_ms
            budget.tokens_left -= completion.prompt_tokens + completion.completion_tokens
            try:
                decision = parse(completion.text)
                accepted = to_result(decision, engine=f"llm:{model}", allowed_actions=actions,
                                     allowed_targets=targets, forbidden=forbidden)
            except DecisionRejected as exc:
                problem = str(exc)
                if completion.finish_reason == "length":
                    problem = f"the answer was cut off at {max_tokens} tokens ({problem}); answer shorter"
                if exc.flag:
                    out.flags.append(f"llm:{model} attempt {attempt + 1} rejected: {problem}")
                self.metrics.call(model, "invalid", completion.prompt_tokens, completion.completion_tokens,
                                  completion.latency_ms)
                logger.info("LLM %s answer rejected (attempt %d): %s", model, attempt + 1, problem)
                messages = base + repair_message(completion.text, problem)
                continue
            self.metrics.call(model, "valid", completion.prompt_tokens, completion.completion_tokens,
                              completion.latency_ms)
            accepted.reasoning = [f"{model} answered validly on attempt {attempt + 1}"]
            return accepted, ""
        return None, f"{model} gave no valid answer in {1 + cfg.llm_max_repairs} attempts; last problem: {problem}"
