"""Phone numbers however typed become one E.164 address; short codes stay digits; non-numbers are refused."""

from __future__ import annotations

import pytest

from channels.sms.numbers import is_short_code, to_e164


@pytest.mark.parametrize(
    "raw",
    ["(905) 555-0100", "905-555-0100", "905.555.0100", "9055550100", "1 905 555 0100", "+1 905 555 0100",
     "+19055550100", "  +1 (905) 555-0100 ", "tel:+19055550100"],
)  # fmt: skip
def test_canadian_number_in_any_format_becomes_e164(raw: str) -> None:
    assert to_e164(raw) == "+19055550100"


def test_number_with_country_code_ignores_default_region() -> None:
    assert to_e164("+44 20 7183 8750") == "+442071838750"


def test_number_without_country_code_is_read_in_the_given_region() -> None:
    assert to_e164("020 7183 8750", region="GB") == "+442071838750"


@pytest.mark.parametrize("raw", ["+19055550100", "+442071838750", "12345"])
def test_normalising_twice_changes_nothing(raw: str) -> None:
    assert to_e164(to_e164(raw)) == to_e164(raw)


@pytest.mark.parametrize("raw", ["3103", "12345", "123456", " 53079 "])
def test_short_code_is_kept_as_digits(raw: str) -> None:
    assert is_short_code(raw)
    assert to_e164(raw) == raw.strip()


@pytest.mark.parametrize("raw", ["5550100", "+12345", "12", "1234567"])
def test_seven_digits_or_a_plus_is_not_a_short_code(raw: str) -> None:
    assert not is_short_code(raw)


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ("", "not a phone number"),
        ("pothole", "not a phone number"),
        ("+1111111111", "not a valid phone number"),  # nine digits after +1
        ("5550100", "read as a CA number"),  # local number without its area code
        ("+11111111111", "not a valid phone number"),  # right length, but no such area code
        ("905-555-0100 ext. 12", "extension"),
    ],
)
def test_what_is_not_a_phone_number_is_a_value_error_naming_the_input(raw: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint) as caught:
        to_e164(raw)
    assert repr(raw) in str(caught.value)


def test_possible_but_unknown_number_is_accepted_when_validity_is_not_required() -> None:
    assert to_e164("+11111111111", require_valid=False) == "+11111111111"


def test_impossible_number_is_refused_even_when_validity_is_not_required() -> None:
    with pytest.raises(ValueError, match="not a valid phone number"):
        to_e164("+1111111111", require_valid=False)
