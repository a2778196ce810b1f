"""What every judge backend shares: the prompts to ask (Ask), the reply cache, and the count of work.

A backend (an OpenAI-compatible server, transformers in-process, vLLM in-process) only says how to get
replies for prompts that are not cached yet; `CachedAsker.ask` does the rest: one request per distinct
prompt, cached replies reused, each reply written to the cache as it arrives, one Judgment per Ask.
This module imports nothing heavy, so that choosing and checking a judge costs no second.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from safeeraser.eval.judges.base import FAILED, OK, UNPARSED, JudgeConfigError, Judgment, ProgressCallback
from safeeraser.eval.judges.cache import JudgmentCache, cache_key


@dataclass(frozen=True)
class ChatSettings:
    model: str = "gpt-4o"
    base_url: str | None = None  # None: OPENAI_BASE_URL, else the OpenAI API
    api_key: str | None = field(default=None, repr=False)  # None: OPENAI_API_KEY
    concurrency: int = 32
    timeout: float = 60.0  # seconds per request
    max_retries: int = 6
    backoff: float = 1.0  # first retry delay in seconds; doubles with each retry
    max_backoff: float = 60.0  # cap on any wait, retry-after included
    max_tokens: int | None = 16  # the prompts ask for one word or one number
    temperature: float | None = 0.0  # None: not sent (the API's default, as the reference's requests)


@dataclass(frozen=True)
class Ask:
    """One prompt. `prompt` is what the cache key is made of, so it must name everything sent.

    messages None, completion False: `prompt` is sent as one user chat message.
    completion True: `prompt` is already in the model's own documented format and is sent as raw text
        (an OpenAI-compatible /completions request; in-process, tokenized as is).
    messages: a chat conversation sent instead of `prompt`, whose content parts may be
        {"type": "text", "text": ...} or {"type": "image", "path": ...}; `prompt` then renders it.
    """

    prompt: str
    parse: Callable[[str], Any]  # returns None when the reply cannot be read
    messages: Any = None
    completion: bool = False


@dataclass
class Usage:
    requests: int = 0  # requests sent (HTTP requests with retries, or prompts generated in-process)
    retries: int = 0
    failed: int = 0  # prompts left without a reply after every retry
    cache_hits: int = 0  # items answered from the cache, no request
    prompt_tokens: int = 0
    completion_tokens: int = 0


Record = Callable[[str, "str | None"], None]  # (cache key, reply or None when it failed)


class CachedAsker:
    """Base of every backend: subclasses implement `_fetch(todo, record)`, calling record once per key."""

    def __init__(self, model: str, prompt_version: str, cache_path: str | os.PathLike | None):
        self.model = model
        self.prompt_version = prompt_version
        self.cache_path = cache_path
        self.usage = Usage()

    def ask(self, asks: Sequence[Ask], progress: ProgressCallback | None = None) -> list[Judgment]:
        keys = [cache_key(self.model, self.prompt_version, a.prompt) for a in asks]
        items_per_key = Counter(keys)
        cache = JudgmentCache(self.cache_path) if self.cache_path else None
        replies: dict[str, str | None] = {}
        todo: dict[str, Ask] = {}  # one request per distinct prompt
        for key, ask in zip(keys, asks, strict=True):
            row = cache.get(key) if cache is not None else None
            if row is not None:
                replies[key] = row["reply"]
            else:
                todo.setdefault(key, ask)
        cached_items = len(asks) - sum(items_per_key[k] for k in todo)
        self.usage.cache_hits += cached_items
        if progress and cached_items:
            progress(cached_items)

        def record(key: str, reply: str | None) -> None:
            replies[key] = reply
            if reply is None:
                self.usage.failed += 1
            elif cache is not None:
                cache.put(key, reply, model=self.model, prompt_version=self.prompt_version)
            if progress:
                progress(items_per_key[key])

        try:
            if todo:
                self._fetch(todo, record)
        finally:
            if cache is not None:
                cache.close()
        return [_judgment(replies.get(key), ask.parse) for key, ask in zip(keys, asks, strict=True)]

    def _fetch(self, todo: dict[str, Ask], record: Record) -> None:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"model": self.model}

    def cost(self) -> dict:
        return asdict(self.usage)


def _judgment(reply: str | None, parse: Callable[[str], Any]) -> Judgment:
    if reply is None:
        return Judgment(status=FAILED)
    value = parse(reply)
    return Judgment(value, OK, reply) if value is not None else Judgment(status=UNPARSED, reply=reply)


def text_of(messages: Any) -> str:
    """A conversation rendered as text for the cache key: roles, texts and image paths, in order."""
    lines = []
    for message in messages:
        content = message["content"]
        parts = [content] if isinstance(content, str) else [
            p.get("text", "") if p.get("type") == "text" else f"<image {p.get('path')}>" for p in content
        ]
        lines.append(f"{message['role']}: " + "\n".join(parts))
    return "\n".join(lines)


def resolve_api_key(settings: ChatSettings, require_key: bool) -> str:
    """The key to send; without one, "EMPTY" for a local server unless `require_key`. Raises JudgeConfigError."""
    key = settings.api_key or os.environ.get("OPENAI_API_KEY")
    if key:
        return key
    if not require_key and (settings.base_url or os.environ.get("OPENAI_BASE_URL")):
        return "EMPTY"  # a local server (vLLM, TGI) usually checks no key, but the client needs one
    if require_key:
        raise JudgeConfigError("the openai judge needs an API key: set OPENAI_API_KEY (or pass --api_key)")
    raise JudgeConfigError("a served judge needs --base_url (or OPENAI_BASE_URL), or an API key for the OpenAI API")
