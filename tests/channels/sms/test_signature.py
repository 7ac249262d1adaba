"""X-Twilio-Signature checking: Twilio's own test vectors pass, and anything altered or unsigned is refused."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import Headers, ImmutableMultiDict

from channels.base import InboundRequest, Unauthorized
from channels.sms.console import ConsoleSmsAdapter
from channels.sms.twilio import TwilioSmsAdapter, TwilioWebhooks
from tests.channels.sms.corpus import request, signature_vectors
from tests.fakes.twilio_api import FakeTwilioApi

VECTORS = signature_vectors()
TOKEN: str = VECTORS["auth_token"]
FORM_VECTORS = [v for v in VECTORS["vectors"] if "raw_body" not in v]
JSON_VECTORS = [v for v in VECTORS["vectors"] if "raw_body" in v]
BASE = FORM_VECTORS[0]


def _form(vector: dict[str, Any]) -> ImmutableMultiDict[str, str]:
    pairs = vector.get("params_multi") or list(vector["params"].items())
    return ImmutableMultiDict([(str(k), str(v)) for k, v in pairs])


def _webhooks(token: str = TOKEN) -> TwilioWebhooks:
    return TwilioSmsAdapter(account_sid="AC" + "0" * 32, auth_token=token, from_number="+19055550100",
                            messaging_service_sid=None)  # fmt: skip


def test_corpus_has_form_and_json_vectors() -> None:
    assert len(FORM_VECTORS) >= 5
    assert len(JSON_VECTORS) >= 1


@pytest.mark.parametrize("vector", FORM_VECTORS, ids=lambda v: v["name"])
def test_twilio_signature_vector_is_accepted(vector: dict[str, Any]) -> None:
    _webhooks().verify(request(vector["uri"], _form(vector), vector["expected_signature"]))


@pytest.mark.parametrize("vector", FORM_VECTORS, ids=lambda v: v["name"])
def test_console_adapter_checks_signatures_like_twilio_adapter(vector: dict[str, Any]) -> None:
    console = ConsoleSmsAdapter(auth_token=TOKEN)
    console.verify(request(vector["uri"], _form(vector), vector["expected_signature"]))
    with pytest.raises(Unauthorized):
        console.verify(request(vector["uri"] + "&x=1", _form(vector), vector["expected_signature"]))


@pytest.mark.parametrize("vector", JSON_VECTORS, ids=lambda v: v["name"])
def test_json_body_webhook_is_refused_because_its_body_hash_cannot_be_checked(vector: dict[str, Any]) -> None:
    # The signature is genuine, but it covers only the URL; the body it vouches for never reaches verify().
    with pytest.raises(Unauthorized, match="bodySHA256"):
        _webhooks().verify(request(vector["uri"], ImmutableMultiDict(), vector["expected_signature"]))


def test_multivalued_params_are_all_signed() -> None:
    (vector,) = [v for v in FORM_VECTORS if "params_multi" in v]
    form = _form(vector)
    assert len(form.getlist("Digits")) > 1
    dropped_one = ImmutableMultiDict([(k, v) for k, v in form.multi_items() if (k, v) != ("Digits", "5678")])
    with pytest.raises(Unauthorized):
        _webhooks().verify(request(vector["uri"], dropped_one, vector["expected_signature"]))


def test_missing_signature_is_unauthorized() -> None:
    with pytest.raises(Unauthorized, match="no X-Twilio-Signature"):
        _webhooks().verify(request(BASE["uri"], _form(BASE)))


def test_empty_signature_is_unauthorized() -> None:
    with pytest.raises(Unauthorized):
        _webhooks().verify(request(BASE["uri"], _form(BASE), ""))


def test_garbage_signature_is_unauthorized() -> None:
    with pytest.raises(Unauthorized, match="does not match"):
        _webhooks().verify(request(BASE["uri"], _form(BASE), "RSOYDt4T1cUTdK1PDd93/VVr8B9="))


def test_signature_made_with_another_auth_token_is_unauthorized() -> None:
    with pytest.raises(Unauthorized):
        _webhooks(token="54321").verify(request(BASE["uri"], _form(BASE), BASE["expected_signature"]))


@pytest.mark.parametrize(
    ("name", "value"), [("Digits", "9999"), ("From", "+14158675300"), ("CallSid", "CA1234567890ABCDF")]
)
def test_tampered_param_is_unauthorized(name: str, value: str) -> None:
    params = dict(_form(BASE))
    params[name] = value
    with pytest.raises(Unauthorized):
        _webhooks().verify(request(BASE["uri"], ImmutableMultiDict(params), BASE["expected_signature"]))


def test_added_param_is_unauthorized() -> None:
    form = ImmutableMultiDict([*_form(BASE).multi_items(), ("Body", "STOP")])
    with pytest.raises(Unauthorized):
        _webhooks().verify(request(BASE["uri"], form, BASE["expected_signature"]))


def test_removed_param_is_unauthorized() -> None:
    form = ImmutableMultiDict([(k, v) for k, v in _form(BASE).multi_items() if k != "Caller"])
    with pytest.raises(Unauthorized):
        _webhooks().verify(request(BASE["uri"], form, BASE["expected_signature"]))


def test_changed_query_string_is_unauthorized() -> None:
    # The hub's outbox id rides in the status callback's query string; it must not be swappable.
    url = BASE["uri"].replace("foo=1", "foo=2")
    with pytest.raises(Unauthorized):
        _webhooks().verify(request(url, _form(BASE), BASE["expected_signature"]))


def test_signature_header_is_found_in_case_insensitive_headers() -> None:
    headers = Headers({"X-Twilio-Signature": BASE["expected_signature"]})
    _webhooks().verify(InboundRequest(url=BASE["uri"], headers=headers, form=_form(BASE)))


def test_webhooks_signed_by_the_fake_api_are_accepted() -> None:
    # Hub tests drive webhooks through the fake, so the fake and verify() must agree on the algorithm.
    fake = FakeTwilioApi("AC" + "0" * 32, TOKEN)
    url = "https://hub.test/webhooks/twilio/sms"
    webhook = fake.inbound_message(url, from_="+16135550123", to="+19055550100", body="pothole on Main St")
    form = ImmutableMultiDict(list(webhook.fields))
    _webhooks().verify(InboundRequest(url=url, headers=Headers(dict(webhook.headers)), form=form))
