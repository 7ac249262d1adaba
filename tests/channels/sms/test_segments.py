"""SMS bodies are counted in GSM-7 septets or UCS-2 code units and packed into segments as carriers bill them.

Figures cross-checked against published sources:
- Twilio glossary "How long can a message be?" (twilio.com/docs/glossary/what-sms-character-limit) and the
  SendGrid copy of it: GSM-7 is 160 characters in one segment, 153 per segment once concatenated, because of the
  6-byte user data header; UCS-2 is 70 / 67 (twilio.com/docs/glossary/what-is-ucs-2-character-encoding).
- Telnyx "message encoding" gives the worked GSM-7 examples 160 = 1, 161 = 2 (153 + 8), 306 = 2, 307 = 3.
- TwilioDevEd/message-segment-calculator issue #66: live Twilio billed 160 x "a" = 1, 161 x "a" = 2,
  70 x "中" = 1, 71 x "中" = 2, 70 x precomposed "é" = 1 GSM-7 segment, 70 x decomposed "e" + U+0301 = 3 UCS-2.
- TwilioDevEd/message-segment-calculator issue #39: 153 x "]" (306 septets) was sent by Twilio as 3 segments,
  not 2, because an escape pair cannot straddle a segment boundary.
"""

from __future__ import annotations

import pytest

from channels.sms.segments import GSM_BASIC, GSM_EXTENSION, SegmentInfo, sms_segments

CURLY_APOSTROPHE = "\u2019"
PICKERING_FR = (
    "Avis de la Ville de Pickering : bris de conduite d'eau sur le chemin Kingston. "
    "Faites bouillir l'eau avant de la boire."
)


def test_gsm_tables_have_the_sizes_of_gsm_03_38() -> None:
    # 128 code points less ESC; 9 printable extension characters plus form feed.
    assert len(GSM_BASIC) == 127
    assert len(GSM_EXTENSION) == 10
    assert not GSM_BASIC & GSM_EXTENSION


def test_empty_body_is_zero_segments() -> None:
    assert sms_segments("") == SegmentInfo("GSM-7", 0, 0, 160, ())


@pytest.mark.parametrize(
    ("length", "segments", "per_segment"),
    [(1, 1, 160), (160, 1, 160), (161, 2, 153), (306, 2, 153), (307, 3, 153), (459, 3, 153), (460, 4, 153)],
)
def test_gsm_body_fills_160_then_153_per_segment(length: int, segments: int, per_segment: int) -> None:
    info = sms_segments("a" * length)
    assert info == SegmentInfo("GSM-7", length, segments, per_segment, ())


@pytest.mark.parametrize(
    ("length", "segments", "per_segment"),
    [(1, 1, 70), (70, 1, 70), (71, 2, 67), (134, 2, 67), (135, 3, 67), (201, 3, 67), (202, 4, 67)],
)
def test_ucs2_body_fills_70_then_67_per_segment(length: int, segments: int, per_segment: int) -> None:
    info = sms_segments("中" * length)
    assert info == SegmentInfo("UCS-2", length, segments, per_segment, ("中",))


@pytest.mark.parametrize("char", sorted(GSM_EXTENSION))
def test_each_extension_character_costs_two_septets(char: str) -> None:
    info = sms_segments("a" + char)
    assert (info.encoding, info.units) == ("GSM-7", 3)


def test_eighty_euro_signs_fill_exactly_one_segment() -> None:
    assert sms_segments("€" * 80) == SegmentInfo("GSM-7", 160, 1, 160, ())


def test_eighty_one_euro_signs_need_two_segments() -> None:
    assert sms_segments("€" * 81) == SegmentInfo("GSM-7", 162, 2, 153, ())


def test_escape_pair_is_not_split_at_a_segment_boundary() -> None:
    # 152 + 2 = 154 septets would fit in 2 x 153 by division, but the € cannot take septet 153 of segment 1
    # and septet 1 of segment 2: it moves whole to segment 2.
    info = sms_segments("a" * 152 + "€" + "a" * 152)
    assert info.units == 306
    assert info.segments == 3


def test_escape_pair_at_segment_end_fits_when_it_does_not_straddle() -> None:
    info = sms_segments("a" * 151 + "€" + "a" * 153)
    assert (info.units, info.segments) == (306, 2)


def test_153_closing_brackets_take_three_segments_as_twilio_bills_them() -> None:
    info = sms_segments("]" * 153)
    assert (info.units, info.segments) == (306, 3)


def test_emoji_outside_bmp_counts_two_code_units() -> None:
    info = sms_segments("Alerte 🚨")
    assert info == SegmentInfo("UCS-2", 9, 1, 70, ("🚨",))


def test_thirty_five_emoji_fill_one_segment() -> None:
    assert sms_segments("🚨" * 35) == SegmentInfo("UCS-2", 70, 1, 70, ("🚨",))


def test_surrogate_pair_is_not_split_at_a_segment_boundary() -> None:
    # 67 emoji = 134 code units; division says 2 x 67, but 67 is odd: each segment holds 33 emoji (66 units)
    # and the last one spills into a third.
    info = sms_segments("🚨" * 67)
    assert info == SegmentInfo("UCS-2", 134, 3, 67, ("🚨",))


def test_extension_character_costs_one_unit_once_the_body_is_ucs2() -> None:
    info = sms_segments("€ 中")
    assert info == SegmentInfo("UCS-2", 3, 1, 70, ("中",))


def test_french_alert_with_gsm_accents_stays_gsm7_in_one_segment() -> None:
    # é, è, à, ù, É and Ç are in the GSM-7 table, and this text uses none outside it.
    assert sms_segments(PICKERING_FR) == SegmentInfo("GSM-7", 119, 1, 160, ())


def test_french_alert_with_e_circumflex_switches_to_ucs2_and_names_it() -> None:
    text = PICKERING_FR + " Gardez vos fenêtres fermées."
    assert sms_segments(text.replace("ê", "e")) == SegmentInfo("GSM-7", 148, 1, 160, ())
    assert sms_segments(text) == SegmentInfo("UCS-2", 148, 3, 67, ("ê",))


@pytest.mark.parametrize("char", ["ê", "â", "î", "ô", "û", "ë", "ï", "ç", "È", "À", "œ"])
def test_french_letters_outside_gsm7_force_ucs2(char: str) -> None:
    info = sms_segments("Avis " + char)
    assert info.encoding == "UCS-2"
    assert info.non_gsm == (char,)


@pytest.mark.parametrize("char", ["é", "è", "à", "ù", "É", "Ç"])
def test_french_letters_in_gsm7_keep_gsm7(char: str) -> None:
    assert sms_segments("Avis " + char).encoding == "GSM-7"


def test_curly_apostrophe_forces_ucs2() -> None:
    info = sms_segments(f"Faites bouillir l{CURLY_APOSTROPHE}eau.")
    assert info == SegmentInfo("UCS-2", 22, 1, 70, (CURLY_APOSTROPHE,))


def test_non_gsm_lists_each_character_once_in_order_of_first_appearance() -> None:
    info = sms_segments(f"« fenêtre » l{CURLY_APOSTROPHE}eau, fenêtre « ")
    assert info.non_gsm == ("«", "ê", "»", CURLY_APOSTROPHE)


def test_decomposed_accent_is_not_normalised_to_gsm7() -> None:
    assert sms_segments("é" * 70).encoding == "GSM-7"
    info = sms_segments("e\u0301" * 70)
    assert info == SegmentInfo("UCS-2", 140, 3, 67, ("\u0301",))


def test_line_breaks_are_gsm7_and_count_one_each() -> None:
    assert sms_segments("a" * 80 + "\r\n" + "a" * 79).segments == 2
    assert sms_segments("a" * 80 + "\n" + "a" * 79) == SegmentInfo("GSM-7", 160, 1, 160, ())


def test_form_feed_costs_two_septets() -> None:
    assert sms_segments("\f").units == 2
