"""Embeddings through the same gate as completions: resolve the model to the candidates the
caller may use, check rate limits, reserve budget, call the adapter (falling back to the next
candidate on a retryable failure), and record exactly one usage event however it ends."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aurax.db_threads import db_background, db_call
from billing import services as billing_services
from billing.tokens import tokens_estimate
from providers import routing
from providers.adapters import adapter_for
from providers.circuit import circuit_failure_async, circuit_success_async
from providers.types import ProviderAuthenticationError, ProviderError

from .errors import GatewayError, model_unavailable
from .pipeline import limits_check_and_reserve

# The message a caller cancels an embeddings call with when it stops it (batches.runner): the
# call is recorded "stopped", not "client_gone".
STOPPED = "stopped"


@dataclass
class EmbeddingResult:
    vectors: list[list[float]]
    input_tokens: int
    estimated: bool
    provider_kind: str
    model: str


async def embed(
    *,
    user,
    workspace,
    model: str,
    inputs: list[str],
    api_key_id: int | None = None,
    source: str,
    reference: str | None = None,
    request_id: str = "",
) -> EmbeddingResult:
    candidates = await routing.candidates_resolve(user=user, workspace=workspace, model=model)
    if not candidates:
        raise model_unavailable(candidates)
    estimate = sum(tokens_estimate(text=text) for text in inputs)
    try:
        _charge, reservation = await db_call(
            limits_check_and_reserve,
            workspace=workspace,
            user=user,
            api_key_id=api_key_id,
            candidate=candidates[0],
            input_tokens=estimate,
            max_output_tokens=0,
        )
    except Exception as exc:
        raise GatewayError.from_exception(exc) from exc

    started = time.monotonic()
    served, status, error_code = candidates[0], "error", ""
    vectors: list[list[float]] = []
    tokens = 0
    last_error: ProviderError | None = None
    try:
        for candidate in candidates:
            served = candidate
            try:
                vectors, tokens = await adapter_for(candidate.kind).embed(
                    candidate.target, candidate.model_id, inputs
                )
            except ProviderError as exc:
                last_error = exc
                if exc.retryable:
                    await circuit_failure_async(candidate.credential_id)
                if not (exc.retryable or isinstance(exc, ProviderAuthenticationError)):
                    break
                continue
            await circuit_success_async(candidate.credential_id)
            status = "ok"
            break
        if status != "ok":
            error_code = last_error.code if last_error else "upstream_error"
            raise GatewayError.from_exception(last_error or ProviderError())
    except asyncio.CancelledError as exc:
        # Cancelled with STOPPED: its caller stopped it (a batch cancelled), as a stream's
        # stop; otherwise the client went away.
        status = "stopped" if STOPPED in exc.args else "client_gone"
        raise
    finally:
        record = asyncio.ensure_future(
            db_background(
                billing_services.usage_record,
                workspace_id=workspace.pk,
                user_id=user.pk,
                api_key_id=api_key_id,
                credential_id=served.credential_id,
                provider_kind=served.kind,
                model=served.model_id,
                input_tokens=tokens or estimate,
                output_tokens=0,
                estimated=not tokens,
                status=status,
                error_code=error_code,
                ttft_ms=None,
                duration_ms=round((time.monotonic() - started) * 1000),
                request_id=request_id,
                source=source,
                reference=reference,
                reservation=reservation,
            )
        )
        # Shielded: a caller going away must not lose the ledger row.
        await asyncio.shield(record)
    return EmbeddingResult(vectors, tokens or estimate, not tokens, served.kind, served.model_id)
