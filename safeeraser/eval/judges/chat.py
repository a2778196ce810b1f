"""The generic judge core: ask a chat model many prompts, read each reply with a given parser.

Any benchmark can use it (SafeEraser labels, MM-Vet's 0-1 grades): it knows nothing about what is
asked. It brings the on-disk cache, bounded concurrency, temperature 0, retries with backoff on
429/5xx/timeouts and malformed bodies (honouring retry-after), and a count of requests and tokens.
A reply that never comes is a FAILED judgment (unknown, counted), never an exception: only a judge
that cannot run at all (no key, key rejected, no such model, endpoint unreachable) stops the run.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import logging
import mimetypes
import os
import random
import time
from pathlib import Path
from typing import Any

import openai

from safeeraser.eval.judges.asker import Ask, CachedAsker, ChatSettings, Record, Usage, resolve_api_key
from safeeraser.eval.judges.base import JudgeConfigError

log = logging.getLogger(__name__)


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
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    # Connection errors and timeouts, and any body that is not a completion (HTML, malformed or truncated
    # JSON, a missing field): a proxy or an overloaded server in between, worth another try.
    return True


def _reply_text(response: Any, completion: bool) -> str:
    choices = getattr(response, "choices", None)
    if not choices or not isinstance(choices, list):
        raise MalformedResponse(f"not a completion: {str(response)[:80]!r}")
    if completion:
        text = getattr(choices[0], "text", None)
        if not isinstance(text, str):
            raise MalformedResponse("a completion without text")
        return text
    message = getattr(choices[0], "message", None)
    if message is None:
        raise MalformedResponse("a chat completion without a message")
    # A model that declines to judge fills `refusal` instead of `content`; keep it as the (unreadable) reply.
    return message.content or getattr(message, "refusal", None) or ""


def _openai_messages(messages: Any) -> list[dict]:
    """Image parts {"type": "image", "path": p} become data URLs: the server cannot read our files."""
    out = []
    for message in messages:
        content = message["content"]
        if not isinstance(content, str):
            content = [_image_url(p["path"]) if p.get("type") == "image" else p for p in content]
        out.append({"role": message["role"], "content": content})
    return out


def _image_url(path: str) -> dict:
    mime = mimetypes.guess_type(path)[0] or "image/png"
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}


class ChatJudgeCore(CachedAsker):
    """Ask prompts, parse replies, remember them. Another benchmark grades with its own prompts, e.g.

        core = ChatJudgeCore(ChatSettings(), prompt_version="mmvet-v1", cache_path="grades.jsonl")
        grades = core.ask([Ask(prompt, parse_score) for prompt in prompts])  # one Judgment per prompt

    `prompt_version` is part of every cache key: bump it whenever the prompts change. `require_key`
    False lets a local server (base_url) run without a key.
    """

    def __init__(self, settings: ChatSettings, prompt_version: str, cache_path: str | os.PathLike | None,
                 require_key: bool = True):
        super().__init__(settings.model, prompt_version, cache_path)
        self.settings = settings
        self._key = resolve_api_key(settings, require_key)  # fail before any work, not at the first request
        self._answered_any = False  # until one request succeeds, an unreachable endpoint is a config error

    def describe(self) -> dict:
        return {"model": self.settings.model, "backend": "server"}

    def _fetch(self, todo: dict[str, Ask], record: Record) -> None:
        asyncio.run(self._ask_missing(todo, record))

    async def _ask_missing(self, todo: dict[str, Ask], record: Record) -> None:
        s = self.settings
        semaphore = asyncio.Semaphore(s.concurrency)
        async with openai.AsyncOpenAI(
            api_key=self._key,
            base_url=s.base_url,
            timeout=s.timeout,
            max_retries=0,  # we retry ourselves
        ) as client:
            stopping = asyncio.Event()  # set on the first error: start no request whose answer would be lost

            async def one(key: str, ask: Ask) -> None:
                async with semaphore:
                    if stopping.is_set():
                        return
                    try:
                        record(key, await self._request(client, ask))
                    except BaseException:
                        stopping.set()
                        raise

            tasks = [asyncio.create_task(one(k, a)) for k, a in todo.items()]
            try:
                await asyncio.gather(*tasks)
            except BaseException:
                # Stop the other requests before the cache closes, so nothing is written after it.
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

    async def _create(self, client: openai.AsyncOpenAI, ask: Ask) -> tuple[Any, str]:
        s = self.settings
        extra = {"max_tokens": s.max_tokens} if s.max_tokens else {}
        if s.temperature is not None:
            extra["temperature"] = s.temperature
        if ask.completion:
            response = await client.completions.create(model=s.model, prompt=ask.prompt, **extra)
        else:
            messages = _openai_messages(ask.messages) if ask.messages else [{"role": "user", "content": ask.prompt}]
            response = await client.chat.completions.create(model=s.model, messages=messages, **extra)
        return response, _reply_text(response, ask.completion)

    async def _request(self, client: openai.AsyncOpenAI, ask: Ask) -> str | None:
        s = self.settings
        for attempt in range(s.max_retries + 1):
            self.usage.requests += 1
            try:
                response, reply = await self._create(client, ask)
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                # The server's message may echo part of the key: report the status only.
                raise JudgeConfigError(f"the judge endpoint rejected the API key (HTTP {exc.status_code})") from None
            except openai.NotFoundError as exc:
                raise JudgeConfigError(
                    f"the judge endpoint has no model {s.model!r} (HTTP 404): {exc.message}"
                ) from None
            except Exception as exc:  # noqa: BLE001 - a fault of one reply must never end the run
                wait = self._retry_wait(exc, attempt)
                if wait is None:
                    break
                self.usage.retries += 1
                await asyncio.sleep(wait)
                continue
            self._answered_any = True
            usage = getattr(response, "usage", None)
            if usage is not None:
                self.usage.prompt_tokens += getattr(usage, "prompt_tokens", 0) or 0
                self.usage.completion_tokens += getattr(usage, "completion_tokens", 0) or 0
            return reply
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


__all__ = ["Ask", "ChatJudgeCore", "ChatSettings", "MalformedResponse", "Usage"]
