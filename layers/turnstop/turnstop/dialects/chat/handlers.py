"""Routes of the chat dialect, one resolver per Lambda function.

``api_app``: ``POST /chat``, ``POST /chat/confirm``, ``GET /chat/threads/{thread_id}`` (and the
CORS preflights of every ``/chat`` path); ``stream_app``: ``POST /chat/stream`` (SSE; a Function
URL in AWS); ``auth_app``: ``/auth/*``, the only function that imports the sign-in (JWT) code.
``POST /chat/cancel`` has its own function and resolver, in ``cancel.py`` (lean: no request
models, no runtime).

Every route: CORS headers for allowed origins; a state-changing one first passes the CSRF
check (403), then needs a signed-in session (401).
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from turnstop.dialects.chat import wire
from turnstop.dialects.chat.models import SendMessage
from turnstop.dialects.chat.renderer import RENDERER
from turnstop.dialects.chat.service import Chat
from turnstop.dialects.chat.threads import thread_id_of
from turnstop.dialects.chat.web import ChatUser, Origins, signed_in
from turnstop.dialects.chat.wire import SHAPE
from turnstop.http.api import TurnstopResolver, json_response, sse_response
from turnstop.http.body import max_duration_ms, parse_body
from turnstop.http.sse import live_turn_response
from turnstop.platform.settings import Settings
from turnstop.runtime.runner import TurnRunner
from turnstop.store import Store

ANY_PATH = ".+"  # Powertools route rules are regular expressions: every path, for preflights


def _resolver(settings: Settings) -> tuple[TurnstopResolver, Origins]:
    origins = Origins(settings)
    app = TurnstopResolver(SHAPE, origins.cors_headers)

    @app.route(ANY_PATH, method="OPTIONS")
    def preflight() -> Response:
        return origins.preflight(app.event)

    return app, origins


def _user(app: TurnstopResolver, origins: Origins, store: Store, settings: Settings, *, changes: bool) -> ChatUser:
    if changes:
        origins.check_state_change(app.event)
    return signed_in(app.event, store, settings)


def api_app(store: Store, settings: Settings, runner: TurnRunner) -> TurnstopResolver:
    """A message's reply runs in the request that sends it, under ``runner``."""
    app, origins = _resolver(settings)
    chat = Chat(store, settings)

    @app.post("/chat")
    def send() -> Response:
        user = _user(app, origins, store, settings, changes=True)
        body = parse_body(app.event, SendMessage, settings.max_body_bytes)
        sent = chat.send(user, body, runner, max_duration_ms=max_duration_ms(app.event))
        return json_response(200, chat.reply(sent, runner, app.remaining_ms), {"X-Thread-Id": sent.thread_id})

    @app.post("/chat/confirm")
    def confirm() -> Response:
        user = _user(app, origins, store, settings, changes=True)
        return json_response(200, chat.confirm(user, thread_id_of(app.event, settings.max_body_bytes), runner))

    @app.get("/chat/threads/<thread_id>")
    def thread(thread_id: str) -> Response:
        user = _user(app, origins, store, settings, changes=False)
        return json_response(200, chat.thread(user, thread_id))

    return app


def stream_app(store: Store, settings: Settings, runner: TurnRunner) -> TurnstopResolver:
    app, origins = _resolver(settings)
    chat = Chat(store, settings)

    @app.post("/chat/stream")
    def stream() -> Response:
        user = _user(app, origins, store, settings, changes=True)
        body = parse_body(app.event, SendMessage, settings.max_body_bytes)
        sent = chat.send(user, body, runner, max_duration_ms=max_duration_ms(app.event))
        answer = live_turn_response(
            store, settings, chat.stream(sent, runner, app.remaining_ms), renderer=RENDERER, render=wire.frame
        )
        answer.headers["X-Thread-Id"] = sent.thread_id
        return sse_response(answer)

    return app


def auth_app(store: Store, settings: Settings) -> TurnstopResolver:
    from turnstop.dialects.chat.signin import SignIn

    app, origins = _resolver(settings)
    signin = SignIn(store, settings)

    def query() -> dict[str, str]:
        return dict(app.current_event.query_string_parameters or {})

    @app.get("/auth/login")
    def login() -> Response:
        return signin.login(app.event, query())

    @app.get("/auth/callback")
    def callback() -> Response:
        return signin.callback(app.event, query())

    @app.post("/auth/logout")
    def logout() -> Response:
        return signin.logout(app.event, _user(app, origins, store, settings, changes=True))

    @app.get("/auth/session")
    def session() -> Response:
        return json_response(200, signin.whoami(_user(app, origins, store, settings, changes=False)))

    return app
