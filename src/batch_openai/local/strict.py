"""Each batch line's body checked as OpenAI checks it, before a responder sees it.

The rules come from `batch_openai.spec` (OpenAI's own request schemas, the same ones the library's
pre-upload check runs): a refused line gets the endpoint's 400 (or 404 for a model) in the error file,
and the other lines of the batch carry on, as on the real service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from batch_openai.local.config import ServerConfig
from batch_openai.spec import (
    SCHEMA_ENDPOINTS,
    RequestProblem,
    check_request,
    model_endpoint_problem,
    model_is_known,
    plain_chat_messages,
    unknown_model_problem,
)

Answer = tuple[int, dict[str, Any]]


class BodyChecker:
    """Finds the answer OpenAI would give instead of running a request (None: run it)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._model_answers: dict[tuple[str, str], RequestProblem | None] = {}
        self._catalogue: tuple[tuple[str, ...], str] = (config.models, config.unknown_models)

    def _model_problem(self, url: str, model: str) -> RequestProblem | None:
        """Wrong endpoint or unknown model, decided once per (endpoint, model) and catalogue."""
        catalogue = (self.config.models, self.config.unknown_models)
        if catalogue != self._catalogue:  # add_models() or /_local/config changed it
            self._model_answers.clear()
            self._catalogue = catalogue
        key = (url, model)
        if key not in self._model_answers:
            found = model_endpoint_problem(url, model)
            reject = self.config.unknown_models == "reject"
            if found is None and reject and not model_is_known(model, self.config.models):
                found = unknown_model_problem(model)
            self._model_answers[key] = found
        return self._model_answers[key]

    def problem(self, url: str, body: dict[str, Any]) -> RequestProblem | None:
        """Why the endpoint would refuse `body`, or None."""
        if url not in SCHEMA_ENDPOINTS:
            return None
        model = body.get("model")
        skip: tuple[str, ...] = ()
        if url == "/v1/chat/completions" and plain_chat_messages(body.get("messages")):
            skip = ("messages",)
        found = check_request(url, body, skip=skip)
        if found is not None or type(model) is not str:
            return found
        return self._model_problem(url, model)

    def answer(self, url: str, body: dict[str, Any]) -> Answer | None:
        """The error answer for a refused body, or None."""
        found = self.problem(url, body)
        return None if found is None else (found.status, found.error_body())


def checked(respond: Callable[[str, dict[str, Any]], Answer], checker: BodyChecker) -> Callable[..., Answer]:
    """A responder that answers refused bodies itself."""

    def respond_checked(url: str, body: dict[str, Any]) -> Answer:
        return checker.answer(url, body) or respond(url, body)

    return respond_checked


def checked_async(
    respond: Callable[[str, dict[str, Any]], Awaitable[Answer]], checker: BodyChecker
) -> Callable[..., Awaitable[Answer]]:
    """The async twin of `checked` (the forward responder)."""

    async def respond_checked(url: str, body: dict[str, Any]) -> Answer:
        return checker.answer(url, body) or await respond(url, body)

    return respond_checked
