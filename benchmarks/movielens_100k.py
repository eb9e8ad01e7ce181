"""MovieLens-100k top-10 benchmark under Microsoft Recommenders' protocol.

Run: ``MMREC_DATA_DIR=<folder holding ml-100k/> python benchmarks/movielens_100k.py``
(``--seeds 42 1 2``, ``--bpr-epochs 30``, ``--quick`` for a smoke run).

Protocol (Recommenders, ``examples/06_benchmarks/movielens.ipynb``): all 100,000
ratings, ``python_stratified_split(ratio=0.75, min_rating=1, filter_by="item")``
-- 75% of every item's ratings in train, so no test item is unknown -- top-10
over the whole catalogue with the user's training items removed, every test
rating relevant whatever its value, metrics averaged over the users present in
test and predictions (all 943). Our :func:`mmrec_lib.splits.stratified_split`
reproduces that split row for row for a given seed (42 is Recommenders'
default); we average over seeds 42, 1 and 2.

Tuning never sees the test set: for each seed, a validation split is carved
from train with the same protocol (75/25 per item, same seed), every
hyper-parameter is chosen on it, the chosen model is refitted on the full
train and evaluated once on test. The "best" model is the family with the
highest mean validation NDCG@10.

``map@10`` is Recommenders' current ``map_at_k`` (divides by min(k, #relevant));
``map`` is Recommenders' ``map`` (divides by #relevant), the definition of the
MAP column in its published table.

The last line of stdout is one JSON object; ``"models"`` maps each model to
``ndcg@10``, ``precision@10``, ``recall@10``, ``map@10``, ``map``, ``train_s``
(means over seeds) plus ``ndcg@10_std`` and the chosen hyper-parameters.
"""

from __future__ import annotations

import _common as common
import numpy as np
import pandas as pd

import mmrec_lib as mm
from mmrec_lib import interest, splits

#: Recommenders README, MovieLens-100k, k=10 (same protocol).
PUBLISHED = {
    "BiVAE (Cornac)": {"map": 0.146126, "ndcg@10": 0.475077, "precision@10": 0.411771,
                       "recall@10": 0.219145},
    "BPR (Cornac)": {"map": 0.132478, "ndcg@10": 0.441997, "precision@10": 0.388229,
                     "recall@10": 0.212522},
    "LightGCN": {"map": 0.088526, "ndcg@10": 0.419846, "precision@10": 0.379626,
                 "recall@10": 0.144336},
    "NCF": {"map": 0.107720, "ndcg@10": 0.396118, "precision@10": 0.347296,
            "recall@10": 0.180775},
    "SAR": {"map": 0.110591, "ndcg@10": 0.382461, "precision@10": 0.330753,
            "recall@10": 0.176385},
}

METRIC_NAMES = {"ndcg@10": "ndcg@10", "precision@10": "precision@10",
                "recall@10": "recall@10", "map@10": "map@10", "map": "map_relevant@10"}


def load_ratings() -> pd.DataFrame:
    """MovieLens-100k ratings: user_id, item_id, rating, timestamp."""
    return mm.datasets.load_movielens_100k().ratings


def movie_vectors() -> tuple[pd.DataFrame, str]:
    """Item vectors for the hybrid: MiniLM text vectors of "title. genres" if the
    chapter 02 encoder works here, else genre one-hot plus a scaled year."""
    movies = mm.datasets.load_movielens_100k().items
    genre_text = [", ".join(genres) for genres in movies["genres"]]
    try:
        from mmrec_lib import text

        table = pd.DataFrame({"item_id": movies["item_id"].astype(str),
                              "title": movies["title"].astype(str), "genre_text": genre_text})
        vectors = text.encode_items(table, fields=("title", "genre_text"),
                                    dataset_name="ml-100k")
        return pd.DataFrame(vectors, index=movies["item_id"].to_numpy()), "minilm(title, genres)"
    except Exception as error:  # noqa: BLE001 - any failure falls back to genres
        print(f"text encoder unavailable ({type(error).__name__}: {error}); using genres")
    genre_columns = [column for column in movies.columns
                     if column not in ("item_id", "title", "release_date", "year", "genres",
                                       "video_release_date", "imdb_url")
                     and movies[column].dtype.kind in "biu"]
    features = movies[genre_columns].astype(np.float32)
    year = movies["year"].astype("float64").fillna(movies["year"].astype("float64").median())
    features["year"] = ((year - year.mean()) / year.std()).astype(np.float32)
    return features.set_index(movies["item_id"].to_numpy()), "genres+year"


def ndcg_on(model, split) -> float:
    table = mm.evaluate(model, split, k=10, metrics=("ndcg",), n_bootstrap=0)
    return float(table["value"].iloc[0])


def choose(candidates: dict, tuning: splits.Split) -> tuple[str, float]:
    """Fit every candidate on the tuning train, return the best by validation NDCG@10."""
    scores = {}
    for label, factory in candidates.items():
        scores[label] = ndcg_on(factory().fit(tuning.train, **_vectors_kwargs(factory)), tuning)
    best = max(scores, key=scores.get)
    return best, scores[best]


_VECTORS = {}


def _vectors_kwargs(factory) -> dict:
    return {"item_vectors": _VECTORS["vectors"]} if getattr(factory, "needs_vectors", False) \
        else {}


def with_vectors(factory):
    factory.needs_vectors = True
    return factory


def families(args) -> dict:
    """Model families: name -> {hyper-parameter label: factory}."""
    l2_grid = (300, 500, 700, 1000) if not args.quick else (500,)

    def ease(l2, exponent=0.0):
        return lambda: interest.EASEModel(l2=l2, user_degree_exponent=exponent)

    def blend(l2, user_l2, weight):
        return lambda: interest.HybridModel(
            [interest.EASEModel(l2=l2, user_degree_exponent=0.25),
             interest.UserEASEModel(l2=user_l2)], weights=[1 - weight, weight])

    def hybrid(l2, weight):
        return with_vectors(lambda: interest.HybridModel(
            [interest.EASEModel(l2=l2), interest.ContentProfileModel()],
            weights=[1 - weight, weight]))

    bpr_settings = dict(embedding_dim=64, epochs=args.bpr_epochs, batch_size=1024,
                        learning_rate=0.005, l2=1e-5)
    return {
        "popularity": {"-": lambda: interest.PopularityModel()},
        "itemknn": {f"neighbors={n}": (lambda n=n: interest.ItemKNNModel(num_neighbors=n))
                    for n in ((50, 100, 200) if not args.quick else (100,))},
        "ease": {f"l2={l2}": ease(l2) for l2 in l2_grid},
        "ease_degree": {f"l2={l2},user_degree_exponent=0.25": ease(l2, 0.25) for l2 in l2_grid},
        "ease_blend": {f"l2=600,user_l2={user_l2},weight={weight}": blend(600, user_l2, weight)
                       for user_l2 in (300,) for weight in ((0.2, 0.3, 0.4)
                                                            if not args.quick else (0.3,))},
        "bpr_mf": {",".join(f"{k}={v}" for k, v in bpr_settings.items()):
                   lambda: interest.BPRMFModel(**bpr_settings, seed=0)},
        "hybrid_content": {f"l2=500,content_weight={w}": hybrid(500, w)
                           for w in ((0.05, 0.1, 0.2) if not args.quick else (0.1,))},
    }


def main() -> None:
    parser = common.make_parser(__doc__, seeds=(42, 1, 2), quick="one setting per model",
                                bpr_epochs=30)
    args = parser.parse_args()
    mm.set_seed(0)

    ratings = load_ratings()
    _VECTORS["vectors"], vector_kind = movie_vectors()
    model_families = families(args)
    records = []
    for seed in args.seeds:
        split = splits.stratified_split(ratings, ratio=0.75, by="item", seed=seed)
        tuning = splits.stratified_split(split.train, ratio=0.75, by="item", seed=seed)
        for family, candidates in model_families.items():
            if len(candidates) > 1 or family in ("ease", "ease_degree", "ease_blend"):
                label, validation_ndcg = choose(candidates, tuning)
            else:
                label, validation_ndcg = next(iter(candidates)), np.nan
            factory = candidates[label]
            with common.Stopwatch() as clock:
                model = factory().fit(split.train, **_vectors_kwargs(factory))
            train_s = clock.seconds
            table = mm.evaluate(model, split, k=10, metrics=("ndcg", "precision", "recall",
                                                             "map", "map_relevant"),
                                n_bootstrap=0)
            values = dict(zip(table["metric"], table["value"], strict=True))
            record = {"seed": seed, "model": family, "setting": label,
                      "validation_ndcg@10": validation_ndcg, "train_s": train_s}
            record.update({key: values[name] for key, name in METRIC_NAMES.items()})
            records.append(record)
            print(f"seed {seed} {family:15s} {label:45s} val={validation_ndcg:.4f} "
                  f"test ndcg@10={record['ndcg@10']:.4f} p@10={record['precision@10']:.4f} "
                  f"({train_s:.1f} s)", flush=True)

    results = pd.DataFrame(records)
    summary = {}
    for family, rows in results.groupby("model", sort=False):
        entry = {key: round(float(rows[key].mean()), 4) for key in METRIC_NAMES}
        entry["ndcg@10_std"] = round(float(rows["ndcg@10"].std(ddof=0)), 4)
        entry["train_s"] = round(float(rows["train_s"].mean()), 2)
        validation = rows["validation_ndcg@10"].mean()
        # Untuned models have no validation score: null in the JSON, not NaN.
        entry["validation_ndcg@10"] = None if np.isnan(validation) else round(float(validation), 4)
        entry["settings"] = rows["setting"].tolist()
        summary[family] = entry
    tuned = {name: entry["validation_ndcg@10"] for name, entry in summary.items()
             if entry["validation_ndcg@10"] is not None}
    best_by_validation = max(tuned, key=tuned.get)
    common.emit({
        "dataset": "MovieLens-100k",
        "protocol": "stratified 75/25 per item (Recommenders python_stratified_split, "
                    "filter_by='item'), top-10, seen items removed, all test items relevant",
        "seeds": args.seeds,
        "item_vectors": vector_kind,
        "models": summary,
        "best_model": best_by_validation,
        "best_ndcg@10": summary[best_by_validation]["ndcg@10"],
        "published_recommenders": PUBLISHED,
    })


if __name__ == "__main__":
    main()
