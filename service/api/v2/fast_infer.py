"""FastInfer: the inference protocol's hot path, answered below FastAPI's routing, as
FastPredict (service/api/fast_predict.py) answers /v1 predictions.

`POST /v2/models/{id}/infer` is answered here when everything is ordinary: the caller's key in
the authenticator's cache, the model cached, fresh and the caller's, the request valid, no MC
dropout, a small batch. It uses the route's own functions (inference.read and encode, the
serving checks and prediction); anything else, every error included, goes on to the route with
the body replayed, so responses are the same.
"""

from __future__ import annotations

import re

from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import ServiceError
from service.serving import loading
from service.serving.inputs import as_batch
from service.serving.predict import predict_inline

from ..fast_predict import header, send_ok
from ..json_body import replaying
from ..request_metrics import ROUTE_TEMPLATE
from . import inference
from .tensors import HEADER_LENGTH

_PATH = re.compile(r"/v2/models/([0-9A-Za-z_-]{1,64})/infer")
ROUTE_PATH = "/v2/models/{model_name}/infer"


class FastInfer:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (_PATH.fullmatch(scope["path"])
                 if scope["type"] == "http" and scope["method"] == "POST"
                 and not scope["query_string"] else None)
        if match is None:
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:  # the body size limit applies as it is read (BodySizeLimit is outside)
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: nobody to answer
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        answer = self._answer(scope, match.group(1), body)
        if answer is not None:
            scope[ROUTE_TEMPLATE] = ROUTE_PATH
            await send_ok(send, *answer)
            return
        await self.app(scope, replaying(body, receive), send)

    def _answer(self, scope: Scope, model_name: str,
                body: bytes) -> tuple[bytes, dict[str, str]] | None:
        state = scope["app"].state.dropnet
        try:
            owner = state.auth.cached_owner(header(scope, b"authorization"))
            entry = loading.ready(state.models, model_name, owner)
            if entry is None:
                return None
            request = inference.read(body, header(scope, HEADER_LENGTH.encode()))
            if request.mc_samples:
                return None  # MC dropout runs in the route's worker thread
            batch = as_batch(request.batch, entry, state.settings.max_predict_rows)
        except (ServiceError, RequestValidationError, SQLAlchemyError):
            return None  # the route answers with the proper error (a 503 for an outage)
        result = predict_inline(entry, batch)
        return None if result is None else inference.encode(model_name, request, result)
