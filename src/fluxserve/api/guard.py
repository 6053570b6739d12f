"""RequestGuard: the checks every HTTP request passes before any route runs.

* The body limit (``FLUXSERVE_MAX_UPLOAD_BYTES``) counts every byte of the body as it streams, in
  whatever content type and framing (Content-Length or chunked): a declared length over the limit
  is answered 413 before anything is read; an undeclared one raises ``BodyTooLarge`` out of
  ``receive`` the moment the count passes the limit, so nothing beyond the limit is read, spooled
  or kept in memory.
* Every answer carries ``X-Content-Type-Options: nosniff``, so a browser never guesses a type
  (an uploaded file is served as a proven image type or as a download, see routes/file.py).
* A path holding text no part of fluxserve can store (a NUL from ``%00``) is refused before any
  route looks it up.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fluxserve.api.body import BodyTooLarge
from fluxserve.api.errors import error_response
from fluxserve.api.openai.errors import from_client_error, is_openai_path
from fluxserve.errors import MalformedRequestError
from fluxserve.text import bad_text_reason, shown


class RequestGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            if is_openai_path(scope.get("path", "")):  # OpenAI clients expect OpenAI's error shape
                await from_client_error(refusal).response()(scope, receive, _with_nosniff(send))
            else:
                await error_response(refusal)(scope, receive, _with_nosniff(send))
            return
        await self.app(scope, self._counting(receive), _with_nosniff(send))

    def _refusal(self, scope: Scope) -> MalformedRequestError | None:
        reason = bad_text_reason(scope.get("path", ""))
        if reason:
            return MalformedRequestError(f"The URL path '{shown(scope['path'])}' {reason}.")
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                length = value.strip()
                if length.isdigit() and int(length) > self.max_body_bytes:
                    return BodyTooLarge(
                        f"Request body is {int(length)} bytes; the limit is {self.max_body_bytes} bytes."
                    )
        return None

    def _counting(self, receive: Receive) -> Receive:
        limit = self.max_body_bytes
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(f"Request body is larger than the limit of {limit} bytes.")
            return message

        return counted


def _with_nosniff(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-content-type-options"]
            message = {**message, "headers": [*headers, (b"x-content-type-options", b"nosniff")]}
        await send(message)

    return sending
