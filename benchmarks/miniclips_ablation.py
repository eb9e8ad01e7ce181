"""Ablation of the multimodal recommender on MiniClips: warm and cold-start items, 3 seeds.

Run: ``MMREC_DATA_DIR=<cache> python benchmarks/miniclips_ablation.py``
(``--default`` for MiniClips default, 2,000 items x 2,000 users; ``--seeds 0 1 2``;
``--models text concat`` for a subset; ``--quick`` for a smoke run).

Protocol (:func:`mmrec_lib.splits.warm_cold_split`, the one chapter 08 uses):
the late releases (``ds.truth.cold_items``) are held out entirely; every other
interaction is split per user 70 / 10 / 20 into train / validation / test with
the seed. Every model is fitted on train only; models with early stopping
watch the validation loss. Warm: top-k among the warm items, training items
removed. Cold: top-k among the cold items only (nobody has seen them). NDCG@10
and Recall@20 as in :func:`mmrec_lib.evaluate`. The oracle ranks by the true
preference score that generated the data (:meth:`MiniClips.oracle_scores`).
Preference is not all that decides which clips a user watched: a clip released
late in the user's active period had less time to be picked. ``oracle_exposure``
adds the log of that share (``oracle_scores(..., exposure=True)``) and ranks the
warm test rows, drawn from all of a user's views, clearly better: it is the
stricter reference on warm items.
Partial ceilings rank by one group of its terms only: ``category`` (what the
text says most clearly), ``energy+timbre`` (what audio carries), ``style``
(what frames carry), ``appeal`` (what only interactions reveal) and ``speech``
(the format the narrator says, generator 4); ``random``
ranks at random (10 draws per seed). A model that sees one modality can be
compared with the ceiling of the attributes that modality carries.

Models: ``id_mf`` (BPR matrix factorisation on ids only; the cold items are in
its catalogue but, never seen, keep the vectors they were initialised with),
``text``, ``audio``, ``visual`` (the two-tower model on one modality),
``speech`` (the two-tower model on the voice-over transcripts alone: clips
without speech have no content), ``concat``, ``attention`` (fusion of the three),
``concat_speech``, ``attention_speech`` (the same fusions with the fourth
modality, ``speech``: MiniLM vectors of the Whisper transcript, masked on clips
without speech; chapter 03b), ``graph`` (concat, then one
graph convolution over the item-item k-NN graph), ``hybrid`` (concat plus user
and item id embeddings, dot product). The two-tower models are trained with
the in-batch softmax (log-q corrected) and cosine scores, with early stopping
on the validation loss (see ``TWO_TOWER``). Each seed sets the split and the
training seed.

The last line of stdout is one JSON object:
``{"warm": {model: {"ndcg@10", "ndcg@10_std", "recall@20", "train_s"}}, "cold": {...},
"oracle": {"warm": {"ndcg@10", ...}, "cold": {...}}, "oracle_exposure": {...same shape...},
"ceilings": {name: {"warm", "cold"}}, "settings": {...}}`` (NDCG@10 in ``ceilings``).
"""

from __future__ import annotations

import _common as common
import numpy as np

import mmrec_lib as mm
from mmrec_lib import features, interest, models, splits
from mmrec_lib.datasets import miniclips

CEILINGS = {"category": ("category",), "energy+timbre": ("energy", "timbre"),
            "style": ("style",), "appeal": ("appeal",), "speech": ("speech",)}
MODELS = ("id_mf", "text", "audio", "visual", "speech", "concat", "attention", "concat_speech",
          "attention_speech", "graph", "hybrid")
#: Models that read the speech modality (its features are computed only if one is run).
SPEECH_MODELS = ("speech", "concat_speech", "attention_speech")

#: Settings of the two-tower models (how they were chosen: mmrec_lib.models.TWO_TOWER_SETTINGS).
TWO_TOWER = models.two_tower_settings()


def make_model(name: str, seed: int, epochs: int):
    """An unfitted model and the modalities it reads (None: ids only)."""
    if name == "id_mf":
        return interest.BPRMFModel(embedding_dim=32, epochs=epochs, seed=seed), None
    options = {**TWO_TOWER, "epochs": epochs, "seed": seed, "fusion": "concat"}
    modalities = list(features.MODALITIES)
    if name.endswith("_speech"):
        modalities.append("speech")
        name = name.removesuffix("_speech")
    if name in features.ALL_MODALITIES:
        modalities = [name]
    elif name == "attention":
        options["fusion"] = "attention"
    elif name == "graph":
        options["graph_k"] = 10
    elif name == "hybrid":
        options.update(use_user_id=True, use_item_id=True, similarity="dot")
    elif name != "concat":
        raise SystemExit(f"unknown model {name!r}; choose from {MODELS}")
    return models.MultimodalRecommender(**options), modalities


def measure(model, split, candidates, test) -> dict[str, float]:
    result = {}
    for metric, k in (("ndcg", 10), ("recall", 20)):
        table = mm.evaluate(model, (split.train, split.validation, test), k=k,
                            metrics=[metric], n_bootstrap=0, candidates=candidates)
        result[f"{metric}@{k}"] = float(table["value"].iloc[0])
    return result


def main() -> None:
    parser = common.make_parser(__doc__, seeds=(0, 1, 2), quick="1 seed, 3 epochs (smoke run)",
                                epochs=TWO_TOWER["epochs"])
    parser.add_argument("--default", action="store_true", help="MiniClips default (not small)")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs = args.seeds[:1], 3
    size = "default" if args.default else "small"

    total = common.Stopwatch()
    ds = miniclips.load_miniclips(size=size)
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    wanted = list(features.MODALITIES) + (["speech"] if set(args.models) & set(SPEECH_MODELS)
                                          else [])
    item_features = features.item_features(ds, modalities=wanted)
    print(f"MiniClips {size}: {len(ds.items)} items, {len(ds.interactions)} interactions, "
          f"{len(ds.truth.cold_items)} cold items; data and features ready in "
          f"{total.elapsed():.0f} s", flush=True)

    results: dict[str, dict[str, list]] = {"warm": {}, "cold": {}}
    oracle: dict[str, dict[str, list]] = {"warm": {}, "cold": {}}
    oracle_exposure: dict[str, dict[str, list]] = {"warm": {}, "cold": {}}
    ceilings: dict[str, dict[str, list]] = {}
    for seed in args.seeds:
        split = splits.warm_cold_split(ds.interactions, ds.truth.cold_items, seed=seed)
        warm_items = np.setdiff1d(ds.items["item_id"], split.cold_items)
        groups = {"warm": (warm_items, split.test), "cold": (split.cold_items, split.cold_test)}
        print(f"seed {seed}: train {len(split.train)}, validation {len(split.validation)}, "
              f"warm test {len(split.test)}, cold test {len(split.cold_test)} rows", flush=True)
        truth = interest.ScoreFunctionModel(ds.oracle_scores,
                                            item_ids=ds.items["item_id"]).fit(split.train)
        exposed = interest.ScoreFunctionModel(
            lambda users, items: ds.oracle_scores(users, items, exposure=True),
            item_ids=ds.items["item_id"]).fit(split.train)
        for group, (candidates, test) in groups.items():
            for metric, value in measure(truth, split, candidates, test).items():
                oracle[group].setdefault(metric, []).append(value)
            for metric, value in measure(exposed, split, candidates, test).items():
                oracle_exposure[group].setdefault(metric, []).append(value)
        for name, terms in CEILINGS.items():
            partial = interest.ScoreFunctionModel(
                lambda users, items, terms=terms: ds.oracle_scores(users, items, terms=terms),
                item_ids=ds.items["item_id"]).fit(split.train)
            for group, (candidates, test) in groups.items():
                ceilings.setdefault(name, {}).setdefault(group, []).append(
                    measure(partial, split, candidates, test)["ndcg@10"])
        for draw in range(10):
            rng = np.random.default_rng([seed, draw])
            chance = interest.ScoreFunctionModel(
                lambda users, items, rng=rng: rng.random((len(users), len(items))),
                item_ids=ds.items["item_id"]).fit(split.train)
            for group, (candidates, test) in groups.items():
                ceilings.setdefault("random", {}).setdefault(group, []).append(
                    measure(chance, split, candidates, test)["ndcg@10"])
        for name in args.models:
            model, modalities = make_model(name, seed, args.epochs)
            with common.Stopwatch() as clock:
                if modalities is None:
                    # The vectors only put the cold items into MF's catalogue; MF never reads them.
                    model.fit(split.train, item_vectors=item_features["text"])
                else:
                    model.fit(split.train, {m: item_features[m] for m in modalities},
                              validation=split.validation)
            seconds = clock.seconds
            line = []
            for group, (candidates, test) in groups.items():
                scores = measure(model, split, candidates, test)
                entry = results[group].setdefault(name, {"train_s": []})
                entry["train_s"].append(seconds)
                for metric, value in scores.items():
                    entry.setdefault(metric, []).append(value)
                line.append(f"{group} ndcg@10 {scores['ndcg@10']:.4f}")
            epochs = getattr(model, "best_epoch_", args.epochs)
            print(f"  {name:<10} {', '.join(line)}  (best epoch {epochs}, {seconds:.0f} s)",
                  flush=True)

    summary: dict = {"warm": {}, "cold": {}, "oracle": {"warm": {}, "cold": {}},
                     "oracle_exposure": {"warm": {}, "cold": {}}}
    for group in ("warm", "cold"):
        for name, entry in results[group].items():
            summary[group][name] = {
                "ndcg@10": round(float(np.mean(entry["ndcg@10"])), 4),
                "ndcg@10_std": round(float(np.std(entry["ndcg@10"], ddof=1)), 4)
                if len(entry["ndcg@10"]) > 1 else 0.0,
                "recall@20": round(float(np.mean(entry["recall@20"])), 4),
                "train_s": round(float(np.mean(entry["train_s"])), 1),
            }
        for key, values_by_metric in (("oracle", oracle), ("oracle_exposure", oracle_exposure)):
            summary[key][group] = {metric: round(float(np.mean(values)), 4)
                                   for metric, values in values_by_metric[group].items()}
    summary["ceilings"] = {name: {group: round(float(np.mean(values)), 4)
                                  for group, values in groups.items()}
                           for name, groups in ceilings.items()}
    summary["settings"] = {"size": size, "seeds": args.seeds, "epochs": args.epochs,
                           "total_s": round(total.elapsed(), 1)}
    common.emit(summary)


if __name__ == "__main__":
    main()
