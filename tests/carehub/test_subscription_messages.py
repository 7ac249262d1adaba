"""The confirmation code text and the confirmation mail: golden renderings in English and French, one SMS segment
for the code, and the CASL sender identity and the "ignore it if you did not ask" line in the mail.

Regenerate the golden files after an intended template change with CAREHUB_UPDATE_GOLDEN=1, then review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from carehub.messaging.templates import MessageTemplates, default_templates_dir
from channels.base import ChannelKind
from channels.sms.segments import sms_segments

GOLDEN = Path(__file__).parent / "golden" / "subscriptions"
UPDATE_GOLDEN = os.environ.get("CAREHUB_UPDATE_GOLDEN") == "1"
IDENTITY = {
    "city_name": "City of Pickering",
    "city_postal_address": "One The Esplanade, Pickering, ON L1V 6K7",
    "city_phone": "905-683-7575",
    "city_website": "https://www.pickering.ca",
    "minutes": 60,
}
LINK = "https://hub.test/alerts/confirm/7.c2lnbmF0dXJlc2lnbmF0dXJl?c=Zm9yLXRoZS10ZXN0cy1vbmx5"


@pytest.fixture(scope="module")
def templates() -> MessageTemplates:
    return MessageTemplates(default_templates_dir())


def check_golden(name: str, rendered: str) -> None:
    golden = GOLDEN / name
    if UPDATE_GOLDEN:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(rendered + "\n", encoding="utf-8")
    assert rendered + "\n" == golden.read_text(encoding="utf-8"), f"{golden.name} differs; see module docstring"


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_code_text_renders_as_its_golden_file_in_one_segment(templates: MessageTemplates, language: str) -> None:
    text = templates.render(ChannelKind.SMS, "subscribe_code", language, code="048213", **IDENTITY)
    check_golden(f"subscribe_code.{language}.txt", text)
    assert "048213" in text
    assert "City of Pickering" in text
    assert sms_segments(text).segments == 1


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_confirmation_mail_renders_as_its_golden_file(templates: MessageTemplates, language: str) -> None:
    text = templates.render(ChannelKind.EMAIL, "subscribe_confirm", language, link=LINK, **IDENTITY)
    check_golden(f"subscribe_confirm.{language}.txt", text)
    assert LINK in text
    for value in ("City of Pickering", "One The Esplanade, Pickering, ON L1V 6K7", "905-683-7575", "pickering.ca"):
        assert value in text
    assert ("ignore this email" if language == "en" else "ignorez ce courriel") in text
