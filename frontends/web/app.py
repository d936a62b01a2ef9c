"""The dashboard's ASGI app (Starlette): pages, JSON for the plots, downloads, the live event stream.

Pages are jinja2 templates over the values of `views`; plots are Plotly figure JSON (`figures`) drawn by the
plotly.js bundled in the plotly package (served from here: nothing comes from the internet). `/events` is a
server-sent event stream: it looks at the DB file's version every `poll` seconds (two `stat` calls) and sends the
live panel's state when a profile committed, so the page updates without a reload. With a token (a non-loopback
bind), every request must carry it — `?token=` once (it is then kept in a cookie), or `Authorization: Bearer`;
without one (loopback), only requests naming a loopback host are answered, so a web page that rebinds its own
name to 127.0.0.1 cannot read the dashboard.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import plotly
from starlette.applications import Starlette
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from modelyzer.frontends.web import figures, views
from modelyzer.frontends.web.live import AgentsProbe, live_state
from modelyzer.frontends.web.snapshot import ResultsDB, Snapshot
from modelyzer.kernel import assembly
from modelyzer.plugins.reporters.best_config import best_config_doc, deployable_config

HERE = Path(__file__).parent
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
COOKIE = "modelyzer_ui_token"
REPORT_DIRS = ("reports", "plots", "best_configs", "results")  # what /export serves from the export path


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


class Dashboard:
    """The app's state: the results DB, the agents probe, the token (None on loopback)."""

    def __init__(self, db: ResultsDB, token: str | None = None, agents: AgentsProbe | None = None,
                 poll: float = 0.25, hosts: tuple[str, ...] = LOOPBACK_NAMES) -> None:
        self.results = db
        self.token = token
        self.hosts = hosts  # the Host headers answered without a token (a DNS-rebinding page is refused)
        self.agents = agents or AgentsProbe()
        self.poll = poll
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["when"] = views.when

    async def snapshot(self) -> Snapshot:
        return await anyio.to_thread.run_sync(self.results.current)

    async def render(self, request: Request, name: str, **context: Any) -> Response:
        snap = await self.snapshot()
        base = {"snapshot": snap, "models": snap.models, "db_path": str(self.results.path)}
        return self.templates.TemplateResponse(request, name, {**base, **context})

    # ---- pages ----------------------------------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        snap = await self.snapshot()
        return await self.render(request, "index.html", runs=views.run_lines(snap.runs))

    async def model_page(self, request: Request) -> Response:
        model = request.path_params["model"]
        snap = await self.snapshot()
        if model not in snap.models:
            return PlainTextResponse(f"no model {model!r} in {self.results.path}", status_code=404)
        try:
            context = await anyio.to_thread.run_sync(lambda: self.model_context(snap, model))
        except ValueError as err:
            return await self.render(request, "error.html", message=str(err))
        return await self.render(request, "model.html", **context)

    def model_context(self, snap: Snapshot, model: str) -> dict[str, Any]:
        spec = snap.spec(model)
        ranked = snap.ranked(model)
        export = snap.export_path()
        reports = []
        if export is not None:
            summary = Path("reports") / "summaries" / model / "result_summary.html"
            if (export / summary).is_file():
                reports.append(("summary report", summary.as_posix()))
            for rc in ranked:
                detailed = Path("reports") / "detailed" / rc.variant_name / "detailed_report.html"
                if (export / detailed).is_file():
                    reports.append((f"detailed report: {rc.variant_name}", detailed.as_posix()))
        return {"model": model, "spec": spec, "rows": views.ranked_rows(snap, model),
                "columns": views.columns(spec, ranked), "constraints": views.constraint_text(spec),
                "tie": views.tie_text(snap.tie(model)), "reports": reports}

    async def table(self, request: Request) -> Response:
        model = request.path_params["model"]
        snap = await self.snapshot()
        context = await anyio.to_thread.run_sync(lambda: self.model_context(snap, model))
        return await self.render(request, "_table.html", **context)

    async def compare(self, request: Request) -> Response:
        model = request.path_params["model"]
        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        snap = await self.snapshot()
        found = await anyio.to_thread.run_sync(lambda: views.compare(snap, model, a, b))
        if found is None:
            return PlainTextResponse(f"compare: {model!r} has no config {a!r} or {b!r}", status_code=404)
        names = [rc.variant_name for rc in snap.ranked(model)]
        return await self.render(request, "compare.html", model=model, cmp=found, names=names)

    # ---- data -----------------------------------------------------------------------------------------------
    async def figures(self, request: Request) -> Response:
        model = request.path_params["model"]
        snap = await self.snapshot()
        figs = await anyio.to_thread.run_sync(
            lambda: {"frontier": figures.frontier(snap, model), "breakdown": figures.breakdown(snap, model)})
        return JSONResponse(figs)

    async def best_config(self, request: Request) -> Response:
        model = request.path_params["model"]
        snap = await self.snapshot()
        doc = await anyio.to_thread.run_sync(
            lambda: best_config_doc(snap.model_data(model), str(self.results.path), snap.latest.status if snap.latest else ""))
        if doc is None:
            return PlainTextResponse(f"{model}: no successful measurement yet", status_code=404)
        return Response(json.dumps(doc, indent=2) + "\n", media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{model}-best_config.json"'})

    async def deployable(self, request: Request) -> Response:
        model = request.path_params["model"]
        snap = await self.snapshot()
        data = await anyio.to_thread.run_sync(lambda: snap.model_data(model))
        if data.best is None:
            return PlainTextResponse(f"{model}: no successful measurement yet", status_code=404)
        codec = assembly.codec(snap.config())
        text = codec.dumps(deployable_config(data))
        return Response(text, media_type="text/plain; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{codec.filename}"'})

    async def export_file(self, request: Request) -> Response:
        snap = await self.snapshot()
        export = snap.export_path()
        rel = Path(request.path_params["path"])
        if export is None or rel.is_absolute() or ".." in rel.parts or not rel.parts or rel.parts[0] not in REPORT_DIRS:
            return PlainTextResponse("not found", status_code=404)
        path = (export / rel).resolve()
        if not path.is_file() or export.resolve() not in path.parents:
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(path)

    async def state(self, request: Request) -> Response:
        snap = await self.snapshot()
        return JSONResponse(await anyio.to_thread.run_sync(lambda: self.state_of(snap)))

    def state_of(self, snap: Snapshot) -> dict[str, Any]:
        return {**live_state(snap, self.agents), "models": snap.models}

    async def events(self, request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            sent: list[int] | None = None
            quiet = 0.0  # seconds since the last event
            while not await request.is_disconnected():
                snap = await self.snapshot()
                state = await anyio.to_thread.run_sync(self.state_of, snap)
                if state["version"] != sent or (state["agents"] is not None and quiet >= self.agents.interval):
                    sent, quiet = state["version"], 0.0
                    yield f"event: update\ndata: {json.dumps(state)}\n\n"
                elif quiet >= 10:
                    quiet = 0.0
                    yield ": keep-alive\n\n"
                while True:  # at least one poll, then until a commit, agents to ask again, or a keep-alive is due
                    await asyncio.sleep(self.poll)
                    quiet += self.poll
                    if self.results.changed() or quiet >= min(self.agents.interval, 10):
                        break
                    if await request.is_disconnected():
                        return

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def plotly_js(self, request: Request) -> Response:
        return FileResponse(PLOTLY_JS, media_type="application/javascript",
                            headers={"Cache-Control": "max-age=86400"})


def token_guard(app: Any, token: str) -> Callable[..., Awaitable[None]]:
    """ASGI middleware: requests without the token get 401; `?token=` sets a cookie so links and SSE work."""

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        request = Request(scope)
        given = (request.query_params.get("token") or request.cookies.get(COOKIE)
                 or request.headers.get("authorization", "").removeprefix("Bearer ").strip())
        if not given or not secrets.compare_digest(given.encode(), token.encode()):
            response = PlainTextResponse("401: this dashboard needs its token: open the URL `modelyzer ui` printed "
                                         "(…/?token=…)", status_code=401)
            await response(scope, receive, send)
            return

        async def send_with_cookie(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and request.query_params.get("token"):
                cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict".encode()
                message.setdefault("headers", []).append((b"set-cookie", cookie))
            await send(message)

        await app(scope, receive, send_with_cookie)

    return guarded


def make_app(dashboard: Dashboard) -> Any:
    d = dashboard
    app = Starlette(routes=[
        Route("/", d.index),
        Route("/state.json", d.state),
        Route("/events", d.events),
        Route("/plotly.min.js", d.plotly_js),
        Route("/model/{model}", d.model_page),
        Route("/model/{model}/table", d.table),
        Route("/model/{model}/figures.json", d.figures),
        Route("/model/{model}/compare", d.compare),
        Route("/model/{model}/best_config.json", d.best_config),
        Route("/model/{model}/config.pbtxt", d.deployable),
        Route("/export/{path:path}", d.export_file),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ])
    return token_guard(app, d.token) if d.token else TrustedHostMiddleware(app, allowed_hosts=list(d.hosts))
