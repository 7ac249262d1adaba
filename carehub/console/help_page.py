"""The help centre in the console (/console/help): the articles by key with their languages, status and review dates,
what residents looked for and did not find, and the article form with a preview of the sanitised page.

Every write calls the help API's own handlers (carehub/help/endpoints.py), so the console and the API share one
path: the same validation, the vector computed before the transaction, the audit entry, the search index refreshed.
Supervisors, communications staff and admins (the API's writers) use these pages; anyone else gets a 403 page."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from carehub.agents.auth import CurrentAgent, RuntimeDep
from carehub.clock import utcnow
from carehub.console.alert_views import TORONTO, local
from carehub.console.views import form_agent, page_agent, render
from carehub.help import endpoints as api
from carehub.help.render import render as render_markdown
from carehub.models import Role
from carehub.problems import Problem
from carehub.runtime import Runtime

router = APIRouter(prefix="/console", include_in_schema=False)
WRITERS = (Role.SUPERVISOR, Role.COMMUNICATIONS, Role.ADMIN)
LANGUAGE_NAMES = {"en": "English", "fr": "French"}
STATUS_NAMES = {"draft": "Draft", "published": "Published", "archived": "Archived"}
WINDOWS = (7, 30, 90)
DONE = {
    "created": "Draft saved. Residents do not see it until it is published.",
    "saved": "Changes saved.",
    "published": "Published: residents find it on the help pages and in search.",
    "archived": "Archived: it is off the help pages and out of search, and can be published again.",
}
FIELDS = ("key", "language", "title", "summary", "topic", "keywords", "related_services", "review_due", "body")
Summary = list[tuple[str, str]]  # (id of the field to fix, what is wrong)


def _page(rt: Runtime, template: str, agent: CurrentAgent, *, status_code: int = 200, **context: Any) -> Response:
    return render(
        rt,
        template,
        status_code=status_code,
        agent=agent,
        page_kind="help",
        ticket_ref=None,
        language_names=LANGUAGE_NAMES,
        status_names=STATUS_NAMES,
        local=local,
        **context,
    )


def _forbidden(rt: Runtime, agent: CurrentAgent) -> Response:
    why = "Help articles are written by supervisors, communications staff and administrators."
    return _page(rt, "help.html.j2", agent, status_code=403, title="Not allowed", forbidden=why)


async def _reader(request: Request, rt: Runtime) -> CurrentAgent | Response:
    agent = await page_agent(request, rt)
    return agent if agent.role in WRITERS else _forbidden(rt, agent)


async def _writer(request: Request, rt: Runtime) -> CurrentAgent | Response:
    """A live session, the form's CSRF token (a 403 without it) and a writing role."""
    agent = await form_agent(request, rt, ticket_work=False)
    return agent if agent.role in WRITERS else _forbidden(rt, agent)


def _done(article_id: int, done: str) -> Response:
    return RedirectResponse(f"/console/help/{article_id}?done={done}", status_code=status.HTTP_303_SEE_OTHER)


# ---- the list and the insights -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArticleGroup:
    """One key's versions, by language."""

    key: str
    topic: str
    versions: dict[str, api.ArticlePublic]

    @property
    def updated_at(self) -> datetime:
        return max(v.updated_at for v in self.versions.values())


def overdue(article: api.ArticlePublic, now: datetime) -> bool:
    """A published article whose review date has come (as the API's due_for_review=true filter reads it)."""
    return article.status == "published" and article.review_due_at is not None and article.review_due_at <= now


@router.get("/help")
async def help_list(
    request: Request, rt: RuntimeDep, days: Annotated[int, Query(ge=1, le=365)] = 30, done: str | None = None
) -> Response:
    agent = await _reader(request, rt)
    if isinstance(agent, Response):
        return agent
    articles = await api.list_articles(rt, agent)
    by_key: dict[str, dict[str, api.ArticlePublic]] = defaultdict(dict)
    for article in articles:
        by_key[article.key][article.language] = article
    groups = [
        ArticleGroup(key, (versions.get("en") or next(iter(versions.values()))).topic, versions)
        for key, versions in by_key.items()
    ]
    return _page(
        rt,
        "help.html.j2",
        agent,
        title="Help articles",
        forbidden=None,
        groups=groups,
        insights=await api.insights(rt, agent, days),
        windows=sorted({*WINDOWS, days}),
        days=days,
        now=utcnow(),
        overdue=overdue,
        done=DONE.get(done or ""),
    )


# ---- the article form --------------------------------------------------------------------------------------------


def _typed(form: FormData, name: str, limit: int = 20_000) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@dataclass
class ArticleForm:
    """The form's fields as typed (kept as text, to show again after an error)."""

    key: str = ""
    language: str = "en"
    title: str = ""
    summary: str = ""
    topic: str = ""
    keywords: str = ""
    related_services: str = ""
    review_due: str = ""  # <input type=date>: a Toronto calendar day
    body: str = ""

    @classmethod
    def from_form(cls, form: FormData) -> ArticleForm:
        return cls(**{name: _typed(form, name).strip() if name != "body" else _typed(form, name) for name in FIELDS})

    @classmethod
    def from_article(cls, article: api.ArticlePublic) -> ArticleForm:
        due = article.review_due_at.astimezone(TORONTO).date().isoformat() if article.review_due_at else ""
        return cls(
            key=article.key,
            language=article.language,
            title=article.title,
            summary=article.summary,
            topic=article.topic,
            keywords=", ".join(article.keywords),
            related_services=", ".join(article.related_services),
            review_due=due,
            body=article.body_markdown,
        )

    def review_due_at(self) -> datetime | None:
        """The review date as the start of that day in Toronto; FormProblems if it is not a date."""
        if not self.review_due:
            return None
        try:
            day = date.fromisoformat(self.review_due)
        except ValueError as error:
            raise FormProblems([("review_due", "Review due: give a date as YYYY-MM-DD.")]) from error
        return datetime.combine(day, time(0), tzinfo=TORONTO).astimezone(UTC)

    def values(self) -> dict[str, Any]:
        """What the API takes, for an update (key and language are fixed once created)."""
        values: dict[str, Any] = {
            "title": self.title,
            "summary": self.summary,
            "body_markdown": self.body,
            "topic": self.topic,
            "keywords": _listed(self.keywords),
            "related_services": _listed(self.related_services),
        }
        due = self.review_due_at()
        return values | ({"review_due_at": due} if due else {})


class FormProblems(Exception):
    def __init__(self, summary: Summary, status_code: int = 422) -> None:
        super().__init__("; ".join(message for _, message in summary))
        self.summary = summary
        self.status_code = status_code


FIELD_OF = {"body_markdown": "body", "review_due_at": "review_due"}
LABELS = {
    "key": "Key",
    "language": "Language",
    "title": "Title",
    "summary": "Summary",
    "topic": "Topic",
    "keywords": "Keywords",
    "related_services": "Related services",
    "review_due": "Review due",
    "body": "Body",
}


def _from_validation(error: ValidationError) -> FormProblems:
    summary: Summary = []
    for problem in error.errors():
        name = str(problem.get("loc", ("title",))[0])
        target = FIELD_OF.get(name, name)
        message = str(problem.get("msg", "is not valid"))
        summary.append((target, f"{LABELS.get(target, target)}: {message}"))
    return FormProblems(summary)


def _from_problem(problem: Problem) -> FormProblems:
    """The API's refusal, next to the field it is about (the message is the API's own)."""
    target = "key" if ("key" in problem.detail or problem.status == 409) else "title"
    return FormProblems([(target, problem.detail)], problem.status)


def _checked(typed: ArticleForm, stored: ArticleForm | None) -> dict[str, Any]:
    """The API's values, every problem the form can see reported at once (the key and topic patterns are checked
    here first, in words a writer understands, ahead of the models' pattern messages)."""
    summary: Summary = []
    new = stored is None
    if new and not api.KEY.match(typed.key):
        summary.append(("key", "Key: lower-case letters, digits and single hyphens (it is the public address)."))
    if not api.TOPIC.match(typed.topic):
        summary.append(("topic", "Topic: lower-case letters, digits and hyphens."))
    try:
        values = typed.values()
        if stored is not None and typed.review_due == stored.review_due:
            values.pop("review_due_at", None)  # unchanged: keep the stored time, not the start of that day
        model = api.ArticleCreate if new else api.ArticleUpdate
        fixed = {"key": typed.key, "language": typed.language} if new else {}
        model.model_validate(fixed | values)
    except ValidationError as error:
        summary += [p for p in _from_validation(error).summary if p[0] not in dict(summary)]
    except FormProblems as problems:
        summary += problems.summary
    if summary:
        raise FormProblems(summary)
    return values


async def _save(rt: Runtime, agent: CurrentAgent, typed: ArticleForm, article: api.ArticlePublic | None) -> int:
    """Create or update through the API's handlers; FormProblems for what the form or the API refuses."""
    values = _checked(typed, ArticleForm.from_article(article) if article else None)
    try:
        if article is None:
            payload = api.ArticleCreate.model_validate({"key": typed.key, "language": typed.language, **values})
            return (await api.create_article(payload, rt, agent)).id
        changes = api.ArticleUpdate.model_validate(values)
        return (await api.update_article(article.id, changes, rt, agent)).id
    except Problem as problem:
        if problem.status == 404:
            raise
        raise _from_problem(problem) from problem


async def _form_page(
    rt: Runtime,
    agent: CurrentAgent,
    typed: ArticleForm,
    article: api.ArticlePublic | None,
    *,
    summary: Summary | None = None,
    preview: bool = False,
    status_code: int = 200,
    done: str | None = None,
) -> Response:
    name = f"Edit: {article.title}" if article else "New help article"
    return _page(
        rt,
        "help_article.html.j2",
        agent,
        status_code=status_code,
        title=f"Error: {name}" if summary else name,
        heading=name,
        v=typed,
        a=article,
        summary=summary or [],
        errors=dict(reversed(summary or [])),
        preview=render_markdown(typed.body).html if preview else None,
        overdue=overdue(article, utcnow()) if article else False,
        done=done,
    )


@router.get("/help/new")
async def new_article(request: Request, rt: RuntimeDep, key: str = "", language: str = "en") -> Response:
    """A blank form; ?key=…&language=fr starts another language's version of an article."""
    agent = await _reader(request, rt)
    if isinstance(agent, Response):
        return agent
    typed = ArticleForm(key=key[:80], language=language if language in LANGUAGE_NAMES else "en")
    return await _form_page(rt, agent, typed, None)


@router.post("/help/new")
async def create(request: Request, rt: RuntimeDep) -> Response:
    """Save a draft (and with "Publish", publish it); "Preview" shows the form again with the page as rendered."""
    agent = await _writer(request, rt)
    if isinstance(agent, Response):
        return agent
    form = await request.form()
    typed, action = ArticleForm.from_form(form), _typed(form, "action")
    if action == "preview":
        return await _form_page(rt, agent, typed, None, preview=True)
    try:
        article_id = await _save(rt, agent, typed, None)
    except FormProblems as problems:
        return await _form_page(
            rt, agent, typed, None, summary=problems.summary, preview=True, status_code=problems.status_code
        )
    if action == "publish":
        await api.publish_article(article_id, rt, agent)
        return _done(article_id, "published")
    return _done(article_id, "created")


@router.get("/help/{article_id:int}")
async def edit_article(request: Request, article_id: int, rt: RuntimeDep, done: str | None = None) -> Response:
    agent = await _reader(request, rt)
    if isinstance(agent, Response):
        return agent
    article = await api.get_article(article_id, rt, agent)
    typed = ArticleForm.from_article(article)
    return await _form_page(rt, agent, typed, article, preview=True, done=DONE.get(done or ""))


@router.post("/help/{article_id:int}")
async def save(request: Request, article_id: int, rt: RuntimeDep) -> Response:
    """Save the changes (and with "Publish", publish the article); "Preview" shows the form again."""
    agent = await _writer(request, rt)
    if isinstance(agent, Response):
        return agent
    article = await api.get_article(article_id, rt, agent)
    form = await request.form()
    typed, action = ArticleForm.from_form(form), _typed(form, "action")
    typed.key, typed.language = article.key, article.language
    if action == "preview":
        return await _form_page(rt, agent, typed, article, preview=True)
    try:
        await _save(rt, agent, typed, article)
    except FormProblems as problems:
        return await _form_page(
            rt, agent, typed, article, summary=problems.summary, preview=True, status_code=problems.status_code
        )
    if action == "publish":
        await api.publish_article(article_id, rt, agent)
        return _done(article_id, "published")
    return _done(article_id, "saved")


@router.post("/help/{article_id:int}/archive")
async def archive(request: Request, article_id: int, rt: RuntimeDep) -> Response:
    agent = await _writer(request, rt)
    if isinstance(agent, Response):
        return agent
    await api.archive_article(article_id, rt, agent)
    return _done(article_id, "archived")
