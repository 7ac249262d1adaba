"""The subscribe form: what the resident typed, read from the posted fields, and checked field by field so the page
can list every problem at once (each linked to its field) and keep what was typed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.datastructures import FormData

from carehub.chat.service import BadAddress, normalise_address
from carehub.settings import Settings
from carehub.subscriptions.areas import normalise_postal_code
from carehub.subscriptions.page_text import TEXT, language
from channels.base import ChannelKind

MAX_FIELD_CHARS = 254  # the longest email address; anything longer is no answer to these questions


@dataclass(frozen=True)
class FieldError:
    target: str  # the id of the input the summary links to
    message: str


@dataclass
class Entered:
    """The form as typed (kept to show again on error)."""

    topics: list[str] = field(default_factory=list)
    postal_code: str = ""
    street_address: str = ""
    phone: str = ""
    email: str = ""
    language: str = "en"
    consent: bool = False


@dataclass(frozen=True)
class Checked:
    """The form once it passed: addresses in canonical form, the postal code as Canada Post writes it."""

    topics: list[str]
    phone: str | None
    email: str | None
    postal_code: str | None
    language: str
    street_address: str | None = None  # as typed; placing it is the page's job (an unknown one is no error)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip()[:MAX_FIELD_CHARS] if isinstance(value, str) else ""


def read(form: FormData, page_language: str) -> Entered:
    topics = [v for v in form.getlist("topic") if isinstance(v, str)]
    chosen = form.get("language")
    return Entered(
        topics=list(dict.fromkeys(t.strip() for t in topics if t.strip()))[:50],
        postal_code=_text(form, "postal_code"),
        street_address=" ".join(_text(form, "street_address").split()),
        phone=_text(form, "phone"),
        email=_text(form, "email"),
        language=language(chosen) if isinstance(chosen, str) and chosen else page_language,
        consent=form.get("consent") == "yes",
    )


def _address(settings: Settings, channel: ChannelKind, typed: str) -> str | None:
    try:
        return normalise_address(settings, channel, typed)
    except BadAddress:
        return None


def check(
    entered: Entered, settings: Settings, topic_slugs: Sequence[str], lang: str
) -> tuple[list[FieldError], Checked | None]:
    """Every problem with the form, in page order, or none and the checked form."""
    t = TEXT[lang]
    errors: list[FieldError] = []
    topics = [slug for slug in entered.topics if slug in topic_slugs]
    if not topics and topic_slugs:
        errors.append(FieldError(f"topic-{topic_slugs[0]}", t["topic_required"]))
    postal_code = normalise_postal_code(entered.postal_code) if entered.postal_code else None
    if entered.postal_code and postal_code is None:
        errors.append(FieldError("postal_code", t["postal_invalid"]))
    phone = normalise_phone(settings, entered.phone) if entered.phone else None
    email = _address(settings, ChannelKind.EMAIL, entered.email) if entered.email else None
    if not entered.phone and not entered.email:
        errors.append(FieldError("phone", t["contact_required"]))
    if entered.phone and phone is None:
        errors.append(FieldError("phone", t["phone_invalid"]))
    if entered.email and email is None:
        errors.append(FieldError("email", t["email_invalid"]))
    if not entered.consent:
        errors.append(FieldError("consent", t["consent_required"]))
    if errors:
        return errors, None
    return [], Checked(topics, phone, email, postal_code, entered.language, entered.street_address or None)


def normalise_phone(settings: Settings, value: object) -> str | None:
    """A posted mobile number in E.164, or None (short codes cannot subscribe on the web)."""
    if not isinstance(value, str) or not value.strip():
        return None
    phone = _address(settings, ChannelKind.SMS, value[:MAX_FIELD_CHARS])
    return phone if phone is not None and phone.startswith("+") else None
