"""The generic judge core: ask a chat model many prompts, read each reply with a given parser.

Any benchmark can use it (SafeEraser labels, MM-Vet's 0-1 grades): it knows nothing about what is
asked. It brings the on-disk cache, bounded concurrency, temperature 0, retries with backoff on
429/5xx/timeouts (honouring retry-after), and a count of requests and tokens.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import openai

from safeeraser.eval.judges.base import FAILED, OK, UNPARSED, JudgeConfigError, Judgment, ProgressCallback
from safeeraser.eval.judges.cache import JudgmentCache, cache_key

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Ask:
    prompt: str
    parse: Callable[[str], Any]  # returns None when the reply cannot be read


@dataclass
class Usage:
    requests: int = 0  # HTTP requests sent, retries included
    retries: int = 0
    failed: int = 0  # prompts left without a reply after every retry
    cache_hits: int = 0  # items answered from the cache, no request
    prompt_tokens: int = 0
    completion_tokens: int = 0


class MalformedResponse(Exception):
    """The endpoint answered 200 with something that is not a chat completion (e.g. a proxy's HTML page)."""


def _retry_after(exc: Exception) -> float | None:
    """Seconds the server asked us to wait (retry-after-ms, or retry-after as seconds or an HTTP date)."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    headers = response.headers
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000.0
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return float(value)
        except ValueError:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (ValueError, TypeError):
        return None


def _is_retryable(exc: Exception) -> bool:
    if isinstance(exc, (openai.APIConnectionError, MalformedResponse)):  # timeouts are connection errors
        return True
    return isinstance(exc, openai.APIStatusError) and (exc.status_code in (408, 409, 429) or exc.status_code >= 500)


def _reply_text(response: Any) -> str:
    choices = getattr(response, "choices", None)
    if not choices:
        raise MalformedResponse(f"not a chat completion: {str(response)[:80]!r}")
    message = choices[0].message
    # A model that declines to judge fills `refusal` instead of `content`; keep it as the (unreadable) reply.
    return message.content or getattr(message, "refusal", None) or ""


def _resolve_api_key(settings: ChatSettings) -> str:
    key = settings.api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        raise JudgeConfigError("the openai judge needs an API key: set OPENAI_API_KEY (or pass --api_key)")
    return key


class ChatJudgeCore:
    """Ask prompts, parse replies, remember them. Another benchmark grades with its own prompts, e.g.

        core = ChatJudgeCore(ChatSettings(), prompt_version="mmvet-v1", cache_path="grades.jsonl")
        grades = core.ask([Ask(prompt, parse_score) for prompt in prompts])  # one Judgment per prompt

    `prompt_version` is part of every cache key: bump it whenever the prompts change.
    """

    def __init__(self, settings: ChatSettings, prompt_version: str, cache_path: str | os.PathLike | None):
        self.settings = settings
        self.prompt_version = prompt_version
        self.cache_path = cache_path
        self._key = _resolve_api_key(settings)  # fail before any work, not at the first request
        self.usage = Usage()
        self._answered_any = False  # until one request succeeds, an unreachable endpoint is a config error

    def ask(self, asks: Sequence[Ask], progress: ProgressCallback | None = None) -> list[Judgment]:
        return asyncio.run(self.ask_async(asks, progress))

    async def ask_async(self, asks: Sequence[Ask], progress: ProgressCallback | None = None) -> list[Judgment]:
        keys = [cache_key(self.settings.model, self.prompt_version, a.prompt) for a in asks]
        items_per_key = Counter(keys)
        cache = JudgmentCache(self.cache_path) if self.cache_path else None
        replies: dict[str, str | None] = {}
        todo: dict[str, str] = {}  # one request per distinct prompt
        for key, ask in zip(keys, asks, strict=True):
            row = cache.get(key) if cache is not None else None
            if row is not None:
                replies[key] = row["reply"]
            else:
                todo.setdefault(key, ask.prompt)
        cached_items = len(asks) - sum(items_per_key[k] for k in todo)
        self.usage.cache_hits += cached_items

        def done(key: str) -> None:
            if progress:
                progress(items_per_key[key])

        if progress and cached_items:
            progress(cached_items)
        try:
            if todo:
                await self._ask_missing(todo, replies, cache, done)
        finally:
            if cache is not None:
                cache.close()
        return [self._judgment(replies[key], ask.parse) for key, ask in zip(keys, asks, strict=True)]

    @staticmethod
    def _judgment(reply: str | None, parse: Callable[[str], Any]) -> Judgment:
        if reply is None:
            return Judgment(status=FAILED)
        value = parse(reply)
        return Judgment(value, OK, reply) if value is not None else Judgment(status=UNPARSED, reply=reply)

    async def _ask_missing(
        self, todo: dict[str, str], replies: dict, cache: JudgmentCache | None, done: Callable[[str], None]
    ) -> None:
        s = self.settings
        semaphore = asyncio.Semaphore(s.concurrency)
        async with openai.AsyncOpenAI(
            api_key=self._key,
            base_url=s.base_url,
            timeout=s.timeout,
            max_retries=0,  # we retry ourselves
        ) as client:
            stopping = asyncio.Event()  # set on the first error: start no request whose answer would be lost

            async def one(key: str, prompt: str) -> None:
                async with semaphore:
                    if stopping.is_set():
                        return
                    try:
                        reply = await self._request(client, prompt)
                        replies[key] = reply
                        if reply is not None and cache is not None:
                            cache.put(key, reply, model=s.model, prompt_version=self.prompt_version)
                        done(key)
                    except BaseException:
                        stopping.set()
                        raise

            tasks = [asyncio.create_task(one(k, p)) for k, p in todo.items()]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                # Stop the other requests before the cache closes, so nothing is written after it.
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

    async def _request(self, client: openai.AsyncOpenAI, prompt: str) -> str | None:
        s = self.settings
        extra = {"max_tokens": s.max_tokens} if s.max_tokens else {}
        for attempt in range(s.max_retries + 1):
            self.usage.requests += 1
            try:
                response = await client.chat.completions.create(
                    model=s.model, messages=[{"role": "user", "content": prompt}], temperature=0, **extra
                )
                reply = _reply_text(response)
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                # The server's message may echo part of the key: report the status only.
                raise JudgeConfigError(f"the judge endpoint rejected the API key (HTTP {exc.status_code})") from None
            except openai.NotFoundError as exc:
                raise JudgeConfigError(
                    f"the judge endpoint has no model {s.model!r} (HTTP 404): {exc.message}"
                ) from None
            except (openai.APIError, MalformedResponse) as exc:
                wait = self._retry_wait(exc, attempt)
                if wait is None:
                    break
                self.usage.retries += 1
                await asyncio.sleep(wait)
                continue
            self._answered_any = True
            if response.usage is not None:
                self.usage.prompt_tokens += response.usage.prompt_tokens or 0
                self.usage.completion_tokens += response.usage.completion_tokens or 0
            return reply
        self.usage.failed += 1
        return None

    def _retry_wait(self, exc: Exception, attempt: int) -> float | None:
        """Seconds to wait before retrying after `exc`, or None to give up on this prompt."""
        s = self.settings
        if not _is_retryable(exc):
            # e.g. a 400 from a content filter on this one prompt: retrying cannot help.
            log.warning("judge request failed, not retried: %s", getattr(exc, "status_code", type(exc).__name__))
            return None
        if attempt == s.max_retries:
            log.warning("judge request failed after %d retries: %s", s.max_retries, type(exc).__name__)
            unreachable = isinstance(exc, openai.APIConnectionError) and not isinstance(exc, openai.APITimeoutError)
            if unreachable and not self._answered_any:
                raise JudgeConfigError(f"cannot reach the judge endpoint ({type(exc).__name__})") from None
            return None
        delay = _retry_after(exc)
        if delay is None:
            delay = s.backoff * 2**attempt * random.uniform(0.5, 1.0)  # jitter spreads out concurrent retries
        return min(delay, s.max_backoff)

    def cost(self) -> dict:
        return asdict(self.usage)
