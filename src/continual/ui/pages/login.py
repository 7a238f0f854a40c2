"""The login page: one password field.

Wrong passwords are slowed by the app's throttle, and each client address may get only
``CONTINUAL_RATE_LIMIT_AUTH_FAILURES`` of them a minute."""

from __future__ import annotations

import math

from nicegui import app, ui
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from continual.ui.auth import SESSION_KEY, safe_target
from continual.ui.context import context_of
from continual.ui.layout import style

_MESSAGES = {
    "wrong": "Wrong password.",
    "busy": "Too many attempts at once. Wait a moment and try again.",
}


def register() -> None:
    """Add the login page to NiceGUI (once per process)."""

    @ui.page("/login", title="continual · log in")
    def login_page(request: Request, redirect_to: str = "/") -> Response | None:
        ctx = context_of(request.scope)
        target = safe_target(redirect_to)
        client = ctx.client(request.scope)
        if ctx.signed_in(app.storage.user):
            # a page function that returns a response skips rendering; the prefix is ours to add
            return RedirectResponse(request.scope.get("root_path", "") + target, status_code=303)

        async def submit() -> None:
            button.disable()
            error.set_visibility(False)
            if wait := ctx.login_failures.wait(client):
                password.value = ""
                error.text = (
                    f"Too many wrong passwords from your address. Try again in {math.ceil(wait)} s."
                )
                error.set_visibility(True)
                button.enable()
                return
            verdict = await ctx.throttle.attempt(password.value or "", ctx.secret)
            if verdict == "wrong":
                ctx.login_failures.take(client)
            if verdict == "ok":
                app.storage.user[SESSION_KEY] = ctx.open_session()
                ui.navigate.to(target)
                return
            password.value = ""
            error.text = _MESSAGES[verdict]
            error.set_visibility(True)
            button.enable()

        style()
        with (
            ui.column().classes("absolute-center w-full items-center px-4"),
            ui.card().props("flat bordered").classes("w-full max-w-sm p-6 gap-4"),
        ):
            with ui.row().classes("items-center gap-2"):
                ui.icon("autorenew", color="primary").classes("text-3xl")
                ui.label("continual").classes("text-2xl font-semibold")
            ui.label("Sign in to the dashboard").classes("text-slate-600 -mt-2")
            password = (
                ui.input("Password", password=True, password_toggle_button=True)
                .props("outlined autofocus data-testid=password")
                .classes("w-full")
                .on("keydown.enter", submit)
            )
            button = (
                ui.button("Log in", on_click=submit)
                .props("unelevated no-caps data-testid=login")
                .classes("w-full")
            )
            error = (
                ui.label().classes("text-negative text-sm -mt-2").props("data-testid=login-error")
            )
            error.set_visibility(False)
            ui.label(
                "The password is CONTINUAL_DASHBOARD_PASSWORD, or the API key when that is not set."
            ).classes("text-xs text-slate-500")
        return None
