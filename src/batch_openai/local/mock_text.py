"""Deterministic prose and log-probabilities for the mock responder."""

from __future__ import annotations

import math
import random
import re
from typing import Any

from batch_openai.tokens import split_tokens, truncate_tokens

VOCAB = (
    "the",
    "a",
    "result",
    "shows",
    "that",
    "this",
    "item",
    "is",
    "clear",
    "and",
    "useful",
    "for",
    "most",
    "readers",
    "because",
    "its",
    "main",
    "point",
    "stays",
    "simple",
    "while",
    "the",
    "details",
    "remain",
    "accurate",
    "consistent",
    "brief",
    "helpful",
    "relevant",
    "complete",
    "careful",
    "summary",
    "answer",
    "review",
    "data",
    "model",
    "text",
    "value",
    "report",
    "topic",
    "example",
    "key",
    "idea",
    "fact",
    "source",
    "evidence",
    "overall",
    "quality",
    "good",
    "strong",
    "weak",
    "neutral",
    "positive",
    "negative",
    "likely",
    "certain",
    "early",
    "later",
    "first",
    "next",
)
# "Reply Yes or No", "positive or negative": the mock answers with one of the offered options.
_CHOICE_RE = re.compile(r"\b([A-Za-z][\w-]{0,20}) or ([A-Za-z][\w-]{0,20})\b")


def prompt_options(prompt: str) -> list[str]:
    """Options the prompt offers ("Yes or No"), if any."""
    m = _CHOICE_RE.search(prompt)
    return [m.group(1), m.group(2)] if m else []


def sentence(rng: random.Random, prompt: str = "") -> str:
    """A plausible reply: an offered option when the prompt asks for one, else 8-40 words."""
    options = prompt_options(prompt)
    if options:
        return rng.choice(options)
    words = [rng.choice(VOCAB) for _ in range(rng.randint(8, 40))]
    words[0] = words[0].capitalize()
    return " ".join(words) + "."


def limit_text(text: str, limit: int | None) -> tuple[str, str]:
    """Cut to `limit` tokens: (text, finish_reason)."""
    if limit is None:
        return text, "stop"
    cut, truncated = truncate_tokens(text, int(limit))
    return cut, ("length" if truncated else "stop")


def _alt_tokens(rng: random.Random, token: str, extra: list[str], k: int) -> list[str]:
    lead = " " if token.startswith(" ") else ""
    pool = [*extra, *(lead + w[:4] for w in rng.sample(VOCAB, min(len(VOCAB), k + 4)))]
    out: list[str] = []
    for cand in pool:
        if cand != token and cand not in out:
            out.append(cand)
        if len(out) >= k:
            break
    return out


def chat_logprobs(rng: random.Random, text: str, top: int, prompt: str) -> list[dict[str, Any]]:
    """`logprobs.content` for `text`: one entry a token, each with `top` alternatives."""
    options = prompt_options(prompt)
    entries = []
    for n, token in enumerate(split_tokens(text)):
        chosen_lp = math.log(0.55 + 0.44 * rng.random())
        alts = _alt_tokens(rng, token, options if n == 0 else [], max(top - 1, 0))
        top_list = [{"token": token, "logprob": chosen_lp, "bytes": list(token.encode())}]
        remaining = 1.0 - math.exp(chosen_lp)
        for alt in alts:
            p = remaining * (0.3 + 0.4 * rng.random())
            remaining -= p
            top_list.append({"token": alt, "logprob": math.log(max(p, 1e-9)), "bytes": list(alt.encode())})
        entries.append(
            {
                "token": token,
                "logprob": chosen_lp,
                "bytes": list(token.encode()),
                "top_logprobs": top_list[:top] if top else [],
            }
        )
    return entries
