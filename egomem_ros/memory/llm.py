"""A client for any OpenAI-compatible chat endpoint (DeepSeek, vLLM, Ollama, llama.cpp server) that
returns schema-validated JSON.

Timeouts, retries with exponential backoff on timeouts / 429 / 5xx, and one repair round: when the
answer is not valid JSON for the schema, the model is shown the error and asked once more. Anything
still invalid raises `LLMError`; callers keep the session for a later retry instead of half-applying it.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from ..errors import EgomemError

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)
MAX_ANSWER_BYTES = 8_000_000   # a chat answer is kilobytes; more is a broken or hostile endpoint


class LLMError(EgomemError, RuntimeError):
    """The endpoint could not give a valid answer (unreachable, timed out, or invalid twice)."""


@dataclass
class LLMConfig:
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "deepseek-chat"
    api_key: str = ""
    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 0.5
    temperature: float = 0.0
    json_mode: bool = True


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def extract_json(text: str) -> object:
    """Parse the JSON object in a chat answer: bare, inside a ``` fence, or surrounded by prose."""
    text = text.strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        if start >= 0 and end > start:
            return json.loads(text[start:end + 1])
        raise


class ChatClient:
    def __init__(self, config: LLMConfig, *, transport: httpx.BaseTransport | None = None):
        self.cfg = config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = httpx.Client(base_url=config.base_url.rstrip("/"), timeout=config.timeout_s,
                                  headers=headers, transport=transport)

    def close(self) -> None:
        self._http.close()

    def chat(self, messages: list[dict[str, str]]) -> str:
        extra = {"response_format": {"type": "json_object"}} if self.cfg.json_mode else {}
        content = self._post(messages, extra).get("content")
        if content is not None and not isinstance(content, str):
            raise LLMError(f"the answer's content is not text: {str(content)[:200]}")
        return content or ""

    def chat_message(self, messages: list[dict], tools: list[dict] | None = None) -> dict:
        """The assistant message itself (content and any `tool_calls`), for tool-using dialogs."""
        return self._post(messages, {"tools": tools} if tools else {})

    def _post(self, messages: list[dict], extra: dict) -> dict:
        """POST /chat/completions with retries; the first choice's message."""
        body = {"model": self.cfg.model, "messages": messages, "temperature": self.cfg.temperature, **extra}
        last: Exception | None = None
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                time.sleep(self.cfg.backoff_s * 2 ** (attempt - 1))
            try:
                resp = self._request(body)
            except httpx.TransportError as err:  # timeouts, refused connections
                last = err
                log.warning("LLM request failed (%s), attempt %d/%d", err, attempt + 1, self.cfg.retries + 1)
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                last = LLMError(f"HTTP {resp.status_code}")
                log.warning("LLM endpoint answered HTTP %d, attempt %d/%d", resp.status_code, attempt + 1,
                            self.cfg.retries + 1)
                continue
            if resp.status_code >= 400:
                raise LLMError(f"LLM endpoint refused the request: HTTP {resp.status_code}: {resp.text[:200]}")
            try:
                message = resp.json()["choices"][0]["message"]
            except (ValueError, KeyError, IndexError, TypeError, RecursionError) as err:
                raise LLMError(f"not an OpenAI-style chat answer: {resp.text[:200]}") from err
            if not isinstance(message, dict):
                raise LLMError(f"not an OpenAI-style chat answer: {resp.text[:200]}")
            return message
        raise LLMError(f"LLM endpoint unavailable after {self.cfg.retries + 1} attempts: {last}")

    def _request(self, body: dict) -> httpx.Response:
        """One POST whose whole answer must come within `timeout_s` (httpx's timeout bounds each read, so
        an endpoint that trickles a byte a second would hold a consolidation for ever) and be at most
        MAX_ANSWER_BYTES."""
        deadline = time.monotonic() + self.cfg.timeout_s
        with self._http.stream("POST", "/chat/completions", json=body) as resp:
            data = bytearray()
            for chunk in resp.iter_bytes():
                data += chunk
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(f"the answer took longer than timeout_s ({self.cfg.timeout_s:g} s) in all")
                if len(data) > MAX_ANSWER_BYTES:
                    raise LLMError(f"the answer is larger than {MAX_ANSWER_BYTES // 1_000_000} MB")
        return httpx.Response(resp.status_code, headers=resp.headers, content=bytes(data), request=resp.request)

    def ask_json(self, system: str, user: str, schema: type[T]) -> T:
        """One validated object of `schema`; one repair round on invalid output."""
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        answer = self.chat(messages)
        try:
            return schema.model_validate(extract_json(answer))
        except (ValueError, ValidationError, RecursionError) as err:   # RecursionError: JSON nested too deep
            log.warning("LLM answer invalid (%s); asking for a repair", str(err).splitlines()[0])
            messages += [{"role": "assistant", "content": answer},
                         {"role": "user", "content": "That was not valid. Error: " + str(err)[:800]
                          + "\nReturn only one JSON object that matches the schema, nothing else."}]
        answer = self.chat(messages)
        try:
            return schema.model_validate(extract_json(answer))
        except (ValueError, ValidationError, RecursionError) as err:
            raise LLMError(f"LLM answer still invalid after one repair: {str(err).splitlines()[0]}") from err


def client_from_section(section, *, json_mode: bool = True) -> ChatClient:
    """A client for a config `LLMSection` (base_url, model, api_key_env, timeout_s, retries)."""
    return ChatClient(LLMConfig(base_url=section.base_url, model=section.model, timeout_s=section.timeout_s,
                                retries=section.retries, api_key=os.environ.get(section.api_key_env, ""),
                                json_mode=json_mode))
