"""The console's rule pages, `/admin/rules/...`: list, editor, history, simulate and replay.

Server-rendered from `admin_ui/templates/rules/`. Every page reads and changes rules through the
same functions as the JSON API (`admin_ui.rules`, `admin_ui.simulation`), so the two never
disagree. Views keep their state in the URL (GET forms); changes are plain form POSTs carrying
the console's `csrf_token`, answered with a redirect (303) or, when the change is refused, the
form again with what was typed and the problems next to it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

from litestar import Controller, Request, Router, get, post
from litestar.di import Provide
from litestar.response import Redirect, Template

from admin_ui.auth import provide_author, require_global_admin
from admin_ui.console_auth import require_console_user
from admin_ui.pages import page
from admin_ui.parameters import refuse_unstorable_parameters
from admin_ui.rule_text import (
    FORMATS,
    RuleTextError,
    is_json,
    parse_rule_text,
    rule_as_text,
    split_problem,
)
from admin_ui.rules import (
    InvalidRule,
    create_database_rule,
    delete_database_rule,
    listed_rules,
    one_rule,
    replace_database_rule,
    roll_back_rule,
    rule_versions,
    set_rule_enabled,
)
from admin_ui.rules_forms import (
    RANGES,
    REPLAY_INPUTS,
    FieldError,
    candidate_rules,
    checked,
    field_for,
    form_values,
    replay_body,
    rule_problems,
    simulate_body,
    simulate_values,
    wants_simulation,
)
from admin_ui.rules_views import (
    BASE,
    STATES,
    editable,
    example_rule,
    list_row,
    problem_views,
    replay_view,
    simulation_view,
    version_comparison,
    version_entries,
)
from admin_ui.simulation import replay_answer, simulation_answer
from admin_ui.state import gateway_of, rulebook_of
from gateway.errors import GatewayError
from gateway.keys.store import KeyStore
from telemetry.queries import REPLAY_DEFAULT_REQUESTS, REPLAY_MAX_REQUESTS

AnyRequest = Request[Any, Any, Any]
FILTERS: Final = ("", "in-force", "off", "problem")


def url(path: str, **query: Any) -> str:
    kept = {name: value for name, value in query.items() if value not in (None, "", False)}
    return f"{path}?{urlencode(kept)}" if kept else path


def local_target(target: str | None, fallback: str) -> str:
    """Where to go back to after a change: only one of these pages, never another site."""
    if target and target.startswith(f"{BASE}") and "//" not in target and "\\" not in target:
        return target
    return fallback


# --- the editor -------------------------------------------------------------------------------


def format_of(request: AnyRequest) -> str:
    chosen = request.query_params.get("format", "yaml")
    return chosen if chosen in FORMATS else "yaml"


def try_links(document: Mapping[str, Any]) -> dict[str, str]:
    """The simulate and replay pages with this rule as a candidate, turned on and merged into
    the running rules (replacing itself when it is one of them)."""
    text = rule_as_text({**document, "enabled": True})
    return {
        "simulate": url(f"{BASE}/simulate", rules=text, merge="on"),
        "replay": url(f"{BASE}/replay", rules=text, merge="on", run="1"),
    }


# --- simulate and replay ----------------------------------------------------------------------


async def _sync(answer: dict[str, Any]) -> dict[str, Any]:
    return answer


async def _replayed(request: AnyRequest, values: Mapping[str, str]) -> dict[str, Any]:
    """The replay API's answer for the form: a workspace may be named by its slug here (the
    console's top bar does), the API takes its id."""
    workspace = values["workspace"].strip()
    if workspace:
        found = await KeyStore(gateway_of(request).engine).get_workspace(workspace)
        if found is None:
            raise FieldError("workspace", f"no workspace with the id or slug '{workspace}'")
        values = {**values, "workspace": found.workspace_id}
    return await replay_answer(request, replay_body(values, datetime.now(UTC)))


class Outcome:
    """What a simulate or replay form gave: the API's answer, or why there is none, placed on
    the inputs it is about (`errors`), on the candidate rules' paths (`problems`) or on the form
    as a whole (`general`)."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values
        self.result: dict[str, Any] | None = None
        self.errors: dict[str, str] = {}
        self.problems: list[dict[str, Any]] = []
        self.general: str | None = None

    async def attempt(self, answer: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        try:
            self.result = await answer()
        except FieldError as error:
            self.errors[error.field] = error.message
        except InvalidRule as refused:
            _, as_list = candidate_rules(self.values["rules"])
            self.general = f"{refused.intro}."
            self.problems = problem_views(
                rule_problems(refused.problems, as_list), self.values["rules"]
            )
        except GatewayError as refused:
            field = field_for(refused.param, self.values)
            if field is None:
                self.general = refused.message
            else:
                self.errors[field] = refused.message

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.problems or self.general)

    @property
    def status(self) -> int:
        return 400 if self.failed else 200


# --- the pages --------------------------------------------------------------------------------


class RulePages(Controller):
    path = "/"
    include_in_schema = False
    dependencies = {"author": Provide(provide_author, sync_to_thread=False)}

    @get("/", name="rules-list")
    async def rules_list(self, request: AnyRequest) -> Template:
        rulebook = rulebook_of(request)
        rows = [list_row(item, rulebook) for item in await listed_rules(request)]
        query = request.query_params
        search = str(query.get("q") or "").strip()
        state = str(query.get("state") or "")
        state = state if state in FILTERS else ""
        shown = [
            row
            for row in rows
            if (not state or row["state"] == state)
            and (
                not search
                or search.lower() in row["id"].lower()
                or search.lower() in row["name"].lower()
            )
        ]
        example = example_rule(rulebook)
        return await page(
            request,
            "rules/list.html",
            nav_active="rules",
            rows=shown,
            total=len(rows),
            in_force=sum(row["state"] == "in-force" for row in rows),
            with_problems=sum(row["state"] == "problem" for row in rows),
            search=search,
            state=state,
            states=STATES,
            saved=query.get("saved"),
            deleted=query.get("deleted"),
            example_yaml=rule_as_text(example),
            example_json=json.dumps(example, ensure_ascii=False),
            base=BASE,
        )

    @get("/new", name="rules-new")
    async def new_rule(self, request: AnyRequest) -> Template:
        chosen = format_of(request)
        text = rule_as_text(example_rule(rulebook_of(request)), chosen)
        return await self._editor(request, text=text, chosen=chosen)

    @post("/new", name="rules-create")
    async def create_rule(self, request: AnyRequest, author: str) -> Template | Redirect:
        form = await request.form()
        text = str(form.get("document") or "")
        attempt = await _saving(
            text, lambda document: create_database_rule(request, document, author)
        )
        if isinstance(attempt, Redirect):
            return attempt
        return await self._editor(request, text=text, **attempt)

    @get("/simulate", name="rules-simulate")
    async def simulate(self, request: AnyRequest) -> Template:
        values = simulate_values(request.query_params)
        outcome = Outcome(values)
        if wants_simulation(values):
            await outcome.attempt(lambda: _sync(simulation_answer(request, simulate_body(values))))
        return await page(
            request,
            "rules/simulate.html",
            nav_active="rules",
            status_code=outcome.status,
            values=values,
            merge=checked(values["merge"]),
            outcome=outcome,
            result=simulation_view(outcome.result) if outcome.result is not None else None,
            models=rulebook_of(request).models,
            base=BASE,
        )

    @get("/replay", name="rules-replay")
    async def replay(self, request: AnyRequest) -> Template:
        values = form_values(request.query_params, REPLAY_INPUTS)
        outcome = Outcome(values)
        if checked(values["run"]):
            await outcome.attempt(lambda: _replayed(request, values))
        return await page(
            request,
            "rules/replay.html",
            nav_active="rules",
            status_code=outcome.status,
            values=values,
            merge=checked(values["merge"]),
            outcome=outcome,
            result=replay_view(outcome.result) if outcome.result is not None else None,
            ranges=RANGES,
            default_last=REPLAY_DEFAULT_REQUESTS,
            max_last=REPLAY_MAX_REQUESTS,
            base=BASE,
        )

    @get("/{rule_id:str}/edit", name="rules-edit")
    async def edit_rule(self, request: AnyRequest, rule_id: str) -> Template:
        item = await one_rule(request, rule_id)
        chosen = format_of(request)
        return await self._editor(
            request,
            item=item,
            text=rule_as_text(editable(item), chosen),
            chosen=chosen,
            saved=request.query_params.get("saved"),
        )

    @post("/{rule_id:str}/edit", name="rules-save")
    async def save_rule(
        self, request: AnyRequest, rule_id: str, author: str
    ) -> Template | Redirect:
        item = await one_rule(request, rule_id)
        form = await request.form()
        text = str(form.get("document") or "")
        base_version = str(form.get("version") or "")
        expected = int(base_version) if base_version.isdigit() else None
        attempt = await _saving(
            text,
            lambda document: replace_database_rule(
                request, rule_id, document, author, expected_version=expected
            ),
        )
        if isinstance(attempt, Redirect):
            return attempt
        return await self._editor(
            request, item=item, text=text, base_version=base_version, **attempt
        )

    @post("/{rule_id:str}/enable", name="rules-enable")
    async def enable_rule(
        self, request: AnyRequest, rule_id: str, author: str
    ) -> Template | Redirect:
        return await self._switch(request, rule_id, True, author)

    @post("/{rule_id:str}/disable", name="rules-disable")
    async def disable_rule(
        self, request: AnyRequest, rule_id: str, author: str
    ) -> Template | Redirect:
        return await self._switch(request, rule_id, False, author)

    @post("/{rule_id:str}/delete", name="rules-delete")
    async def delete_rule(self, request: AnyRequest, rule_id: str, author: str) -> Redirect:
        await delete_database_rule(request, rule_id, author)
        return Redirect(url(BASE, deleted=rule_id), status_code=303)

    @get("/{rule_id:str}/history", name="rules-history")
    async def history(self, request: AnyRequest, rule_id: str) -> Template:
        return await self._history(request, rule_id)

    @post("/{rule_id:str}/rollback", name="rules-rollback")
    async def rollback(self, request: AnyRequest, rule_id: str, author: str) -> Template | Redirect:
        form = await request.form()
        version = str(form.get("version") or "")
        if not version.isdigit():
            return await self._history(
                request, rule_id, error="Choose the version to restore.", status_code=400
            )
        try:
            restored = await roll_back_rule(request, rule_id, int(version), author)
        except InvalidRule as refused:
            return await self._history(
                request,
                rule_id,
                error=f"{refused.intro}:",
                problems=[split_problem(problem) for problem in refused.problems],
                status_code=400,
            )
        return Redirect(
            url(f"{BASE}/{rule_id}/history", restored=version, now=restored["version"]),
            status_code=303,
        )

    # --- shared by the handlers ---------------------------------------------------------------

    async def _editor(
        self,
        request: AnyRequest,
        *,
        text: str,
        item: Mapping[str, Any] | None = None,
        chosen: str | None = None,
        problems: list[tuple[str, str]] | None = None,
        error: str | None = None,
        saved: str | None = None,
        base_version: str | None = None,
        status_code: int = 200,
    ) -> Template:
        rulebook = rulebook_of(request)
        row = list_row(item, rulebook) if item is not None else None
        rule_id = str(item["id"]) if item is not None else None
        return await page(
            request,
            "rules/edit.html",
            nav_active="rules",
            status_code=status_code,
            rule=row,
            rule_id=rule_id,
            text=text,
            format=chosen or ("json" if is_json(text) else "yaml"),
            problems=problem_views(problems or [], text),
            error=error,
            saved=saved,
            version=base_version or (item.get("version") if item is not None else None),
            action=f"{BASE}/{rule_id}/edit" if rule_id else f"{BASE}/new",
            try_links=try_links(editable(item)) if item is not None else None,
            base=BASE,
        )

    async def _switch(
        self, request: AnyRequest, rule_id: str, enabled: bool, author: str
    ) -> Template | Redirect:
        form = await request.form()
        back = local_target(str(form.get("next") or ""), f"{BASE}/{rule_id}/edit")
        try:
            await set_rule_enabled(request, rule_id, enabled, author)
        except InvalidRule as refused:
            item = await one_rule(request, rule_id)
            return await self._editor(
                request,
                item=item,
                text=rule_as_text(editable(item)),
                problems=[split_problem(problem) for problem in refused.problems],
                error=f"{refused.intro}:",
                status_code=400,
            )
        return Redirect(back, status_code=303)

    async def _history(
        self,
        request: AnyRequest,
        rule_id: str,
        *,
        error: str | None = None,
        problems: list[tuple[str, str]] | None = None,
        status_code: int = 200,
    ) -> Template:
        versions = await rule_versions(request, rule_id)
        rulebook = rulebook_of(request)
        current: dict[str, Any] | None
        try:
            current = await one_rule(request, rule_id)
        except GatewayError:
            current = None  # deleted: its history remains
        by_number = {int(version["version"]): version for version in versions}
        entries = version_entries(versions, current.get("version") if current else None)
        compare = version_comparison(request.query_params, by_number)
        return await page(
            request,
            "rules/history.html",
            nav_active="rules",
            status_code=status_code,
            rule_id=rule_id,
            rule=list_row(current, rulebook) if current is not None else None,
            config_rule=rulebook.is_config_rule(rule_id),
            entries=entries,
            numbers=sorted(by_number, reverse=True),
            compare=compare,
            restored=request.query_params.get("restored"),
            restored_as=request.query_params.get("now"),
            error=error,
            problems=[{"path": path, "message": message} for path, message in problems or []],
            base=BASE,
        )


async def _saving(
    text: str, save: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
) -> Redirect | dict[str, Any]:
    """Store the editor's text with `save` (an API operation): the redirect to the saved rule,
    or what the editor shows instead (`problems`, `error`, `status_code`)."""
    problems, document = _parsed(text)
    error: str | None = None
    status = 400
    if document is not None:
        try:
            item = await save(document)
        except InvalidRule as refused:
            problems = [split_problem(problem) for problem in refused.problems]
        except GatewayError as refused:
            problems, error = _refusal(refused)
            status = refused.status
        else:
            return _saved(str(item["id"]), int(item["version"]))
    return {"problems": problems, "error": error, "status_code": status}


def _parsed(text: str) -> tuple[list[tuple[str, str]], dict[str, Any] | None]:
    """The editor's text as a rule document, or the problems that stop it being one."""
    try:
        document = parse_rule_text(text)
    except RuleTextError as error:
        return [(error.where, error.message)], None
    if not isinstance(document, dict):
        return [("", "a rule is a mapping with 'id', 'when' and 'then'")], None
    return [], document


def _refusal(refused: GatewayError) -> tuple[list[tuple[str, str]], str | None]:
    """A refusal that names a field of the rule is a problem at that path; any other (a stale
    version, a config file rule) is said above the editor."""
    if refused.param and refused.status == 400:
        return [(refused.param, refused.message)], None
    return [], refused.message


def _saved(rule_id: str, version: int) -> Redirect:
    return Redirect(url(f"{BASE}/{rule_id}/edit", saved=version), status_code=303)


OPERATOR_GUARDS: Final = [
    require_console_user,
    require_global_admin,
    refuse_unstorable_parameters,
]
"""Rules act on every workspace: the pages need an operator, as the rules API does."""


def rules_pages_router() -> Router:
    """The rule pages, to mount under `/admin` (they answer at `/admin/rules/...`)."""
    return Router(
        path="/rules",
        guards=list(OPERATOR_GUARDS),
        route_handlers=[RulePages],
        include_in_schema=False,
    )
