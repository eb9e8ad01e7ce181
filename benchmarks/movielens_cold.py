"""MovieLens-100k warm and cold start with text: does content understanding pay off on real data?

Run: ``MMREC_DATA_DIR=<folder holding ml-100k/> python benchmarks/movielens_cold.py``
(``--seeds 0 1 2``, ``--epochs 10`` for the two-tower, ``--quick`` for a smoke run).

Protocol, per seed:

* cold items: 10% of the movies with at least 5 ratings, drawn at random; every
  rating of theirs is held out (``cold_test``, kept for users who have training
  rows). No model sees them in training; content models see their text.
* warm: the other ratings are split with Microsoft Recommenders' MovieLens
  protocol (:func:`mmrec_lib.splits.stratified_split`, 75/25 per item, same seed).
* evaluation with :func:`mmrec_lib.evaluate` (training items removed, ties at
  random): warm = the warm test rows, ranked among the warm items; cold = the
  cold rows, the cold items ranked among themselves (``candidates``). NDCG@10 and
  Recall@20.
* text: MiniLM vectors of "title. genres. released <year>" (chapter 02's
  encoder, cached by :func:`mmrec_lib.text.encode_items`).
* tuning never sees the test rows: the popularity prior of the linear content
  model is chosen on a validation split carved from the warm train with the same
  protocol; the hybrid learns its weights on its own hold-out of train
  (``HybridModel(weights="tune")``).

Models: ``random`` (constant scores, so random ties), ``popularity``,
``popularity_index_ties`` (popularity ranked with ties to the lower catalogue
index, the old default: on cold items it is the catalogue order),
``content_profile`` (chapter 05), ``content_linear`` (:class:`LinearContentModel`,
content only), ``content_linear_pop`` (the same plus a tuned popularity prior),
``two_tower_text`` (:class:`MultimodalRecommender` on the text vectors, no id
embeddings), ``ease`` (warm reference), ``hybrid_equal`` (EASE + content profile,
equal weights, the library's old default), ``hybrid_tuned`` (EASE + linear
content, weights learned on validation).

The last line of stdout is one JSON object ``{"warm": {model: {"ndcg@10": ..,
"ndcg@10_std": .., "recall@20": .., "recall@20_std": ..}}, "cold": {...},
"settings": {...}}`` (means and population std over seeds).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

import mmrec_lib as mm
from mmrec_lib import content_models, interest, splits

COLD_SHARE = 0.1
MIN_RATINGS = 5
POPULARITY_WEIGHTS = (0.0, 0.5, 1.0, 2.0)


def movie_text_vectors() -> pd.DataFrame:
    """MiniLM vectors of "title. genres. released <year>" for every movie, indexed by item id."""
    from mmrec_lib import text

    movies = mm.datasets.load_movielens_100k().items
    year = movies["year"].astype("float64")
    table = pd.DataFrame({
        "item_id": movies["item_id"].astype(str),
        "title": movies["title"].astype(str),
        "genre_text": [", ".join(genres) for genres in movies["genres"]],
        "year_text": ["" if np.isnan(value) else f"released {int(value)}" for value in year],
    })
    vectors = text.encode_items(table, fields=("title", "genre_text", "year_text"),
                                dataset_name="ml-100k-title-genres-year")
    return pd.DataFrame(vectors, index=movies["item_id"].to_numpy())


def cold_warm_split(ratings: pd.DataFrame, seed: int) -> dict:
    """Hold out COLD_SHARE of the movies with >= MIN_RATINGS ratings; split the rest 75/25 per item."""
    counts = ratings["item_id"].value_counts()
    eligible = np.sort(counts.index[counts >= MIN_RATINGS].to_numpy())
    rng = np.random.RandomState(seed)
    cold = np.sort(rng.choice(eligible, size=int(round(COLD_SHARE * len(eligible))),
                              replace=False))
    held_out = splits.cold_start_item_split(ratings, items=cold, seed=seed)
    warm = splits.stratified_split(held_out.train, ratio=0.75, by="item", seed=seed)
    cold_test = held_out.test[held_out.test["user_id"].isin(warm.train["user_id"])]
    return {"train": warm.train, "test": warm.test, "cold_test": cold_test, "cold_items": cold}


def constant_model() -> interest.ScoreFunctionModel:
    """Every item scores 0: with random ties, a random ranking."""
    return interest.ScoreFunctionModel(
        lambda user_ids, item_ids: np.zeros((len(user_ids), len(item_ids))))


def measure(model, data: dict, warm_items: np.ndarray, *, tie_break: str = "random") -> dict:
    """Warm and cold NDCG@10 and Recall@20 of a fitted model."""
    values = {}
    for part, target, candidates in (("warm", data["test"], warm_items),
                                     ("cold", data["cold_test"], data["cold_items"])):
        for metric, k in (("ndcg", 10), ("recall", 20)):
            table = mm.evaluate(model, (data["train"], target), k=k, metrics=(metric,),
                                n_bootstrap=0, candidates=candidates, tie_break=tie_break)
            values[(part, f"{metric}@{k}")] = float(table["value"].iloc[0])
    return values


def choose_popularity_weight(data: dict, vectors: pd.DataFrame, seed: int) -> float:
    """The popularity prior of LinearContentModel with the best validation NDCG@10 (warm)."""
    tuning = splits.stratified_split(data["train"], ratio=0.75, by="item", seed=seed)
    scores = {}
    for weight in POPULARITY_WEIGHTS:
        model = content_models.LinearContentModel(popularity_weight=weight)
        model.fit(tuning.train, item_vectors=vectors)
        table = mm.evaluate(model, tuning, k=10, metrics=("ndcg",), n_bootstrap=0,
                            candidates=np.setdiff1d(vectors.index, data["cold_items"]))
        scores[weight] = float(table["value"].iloc[0])
    return max(scores, key=scores.get)


def main() -> None:
    parser = argparse.ArgumentParser(description="MovieLens-100k warm/cold start with text")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10, help="two-tower epochs")
    parser.add_argument("--quick", action="store_true", help="one seed, 2 two-tower epochs")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs = args.seeds[:1], 2
    mm.set_seed(0)
    ratings = mm.datasets.load_movielens_100k().ratings
    vectors = movie_text_vectors()
    records, settings = [], {"popularity_weight": []}
    for seed in args.seeds:
        data = cold_warm_split(ratings, seed)
        warm_items = np.setdiff1d(vectors.index.to_numpy(), data["cold_items"])
        popularity_weight = choose_popularity_weight(data, vectors, seed)
        settings["popularity_weight"].append(popularity_weight)
        models = {
            "random": constant_model(),
            "popularity": interest.PopularityModel(),
            "popularity_index_ties": interest.PopularityModel(),
            "content_profile": interest.ContentProfileModel(),
            "content_linear": content_models.LinearContentModel(),
            "content_linear_pop": content_models.LinearContentModel(
                popularity_weight=popularity_weight),
            "two_tower_text": mm.models.MultimodalRecommender(
                fusion="concat", use_user_id=False, use_item_id=False, epochs=args.epochs,
                seed=seed),
            "ease": interest.EASEModel(),
            "hybrid_equal": interest.HybridModel(
                [interest.EASEModel(), interest.ContentProfileModel()]),
            "hybrid_tuned": interest.HybridModel(
                [interest.EASEModel(), content_models.LinearContentModel()], weights="tune",
                seed=seed),
        }
        for name, model in models.items():
            start = time.perf_counter()
            if name == "two_tower_text":
                model.fit(data["train"], {"text": vectors})
            else:
                model.fit(data["train"], item_vectors=vectors)
            tie_break = "index" if name == "popularity_index_ties" else "random"
            values = measure(model, data, warm_items, tie_break=tie_break)
            seconds = time.perf_counter() - start
            for (part, metric), value in values.items():
                records.append({"seed": seed, "model": name, "part": part, "metric": metric,
                                "value": value})
            extra = f" weights={model.weights_.round(2).tolist()}" if name == "hybrid_tuned" else ""
            print(f"seed {seed} {name:22s} warm ndcg@10={values[('warm', 'ndcg@10')]:.4f} "
                  f"cold ndcg@10={values[('cold', 'ndcg@10')]:.4f} ({seconds:.1f} s){extra}",
                  flush=True)
    results = pd.DataFrame(records)
    summary: dict = {"warm": {}, "cold": {}}
    for (part, model, metric), rows in results.groupby(["part", "model", "metric"], sort=False):
        entry = summary[part].setdefault(model, {})
        entry[metric] = round(float(rows["value"].mean()), 4)
        entry[f"{metric}_std"] = round(float(rows["value"].std(ddof=0)), 4)
    summary["settings"] = {"seeds": args.seeds, "two_tower_epochs": args.epochs,
                           "text": "minilm(title, genres, year)", **settings}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
