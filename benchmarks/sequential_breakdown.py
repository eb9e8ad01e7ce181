"""Where SessionSASRec and the session-intent model lose to the oracles on MiniClips, per kind of target.

Run: ``MMREC_DATA_DIR=<cache> python benchmarks/sequential_breakdown.py``
(``--seeds 0 1``: model seeds; ``--data-seed``; ``--size tiny`` for a smoke run).

Same protocol as ``sequential.py``'s MiniClips warm part (each user's last view,
ranked among the clips released by then and not watched before) and the same
SessionSASRec (time gaps, user vector, next-episode / same-creator terms, text +
speech + audio + visual content), the same session-intent choice model
(:class:`~mmrec_lib.sequential.SessionIntentModel`) and their geometric mix (weight
chosen on validation). Each test target is then put in groups by what caused it in
the simulator, and the models are scored beside the bag-of-views, Bayes and
true-focus oracles on every group:

- ``new_session``: the first view of a session (the request comes after a break);
- ``continuing``: a later view of a session;
- ``same_creator``: same creator as the previous view of the session;
- ``next_episode``: the next episode of a series the user watched an episode of;
- ``same_category``: same (hidden) category as the previous view of the session;
- ``taste``: a new session, or another category than the previous view's: the
  user's standing taste (and the session's hidden focus) explain it.

Measured (data seed 0, model seeds 0 / 1, 500 targets, an AVX-512 AMD EPYC; 258 s,
1.7 GB peak): SessionSASRec (the last 100 views) beats the bag oracle where the
session explains the view (same creator 0.457 / 0.452 vs 0.207, next episode 0.792 /
0.809 vs 0.032) and is about 0.09 below it where the taste does (``taste`` 0.209 /
0.211 vs 0.296). The intent model is ahead of it in every group but one (all 0.311 /
0.309 against 0.273 / 0.274, taste 0.229 / 0.223, same creator 0.525 / 0.517): on a
session's first view SessionSASRec leads (0.336 / 0.323 against 0.319 / 0.314). With
50 views it trailed there too (0.274 / 0.292), and in ``taste`` (0.194 / 0.202): the
longer window is a better estimate of the standing taste. Their product gives 0.316 /
0.310 overall. The last stdout line is JSON.
"""

from __future__ import annotations

import _common as common
import numpy as np
import pandas as pd
import sequential as bench

from mmrec_lib import sequential as sq
from mmrec_lib.datasets import miniclips
from mmrec_lib.sequential.evaluation import evaluation_histories

K = 10
GROUPS = ("all", "new_session", "continuing", "same_creator", "next_episode", "same_category",
          "taste")
ORACLES = ("bag_oracle", "bayes_oracle", "true_focus_oracle")


def ndcg_at(scores: np.ndarray, candidates: np.ndarray, target: int) -> float:
    """NDCG@K of one target among the candidates (ties counted against the target)."""
    scores = np.where(candidates, scores, -np.inf)
    rank = int(np.sum(scores > scores[target]))
    return 1.0 / np.log2(rank + 2) if rank < K else 0.0


def target_kinds(ds, history: pd.DataFrame, last: pd.Series) -> dict:
    """The groups of one held-out view, from the simulator's sessions and series."""
    items = ds.items.set_index("item_id")
    category = pd.Series(ds.truth.category, index=ds.items["item_id"].to_numpy())
    previous = history.iloc[-1]
    continuing = previous["session_id"] == last["session_id"]
    target = items.loc[last["item_id"]]
    watched = items.loc[history["item_id"]]
    series = target["series_id"]
    next_episode = bool(series != "" and ((watched["series_id"] == series)
                                          & (watched["episode"] == target["episode"] - 1)).any())
    same_category = bool(continuing and category[previous["item_id"]]
                         == category[last["item_id"]])
    return {"all": True, "new_session": not continuing, "continuing": continuing,
            "same_creator": bool(continuing and items.loc[previous["item_id"], "creator_id"]
                                 == target["creator_id"]),
            "next_episode": next_episode, "same_category": same_category,
            "taste": not same_category}


def breakdown(ds, split, models: dict) -> pd.DataFrame:
    """One row per test target: its groups and the NDCG@K of each model and the oracles."""
    released = sq.released_candidates(ds.items.set_index("item_id")["release_time"])
    model_ndcg = {name: sq.evaluate_next_item(model, split, k=K, candidates=released,
                                              per_user=True)[f"ndcg@{K}"]
                  for name, model in models.items()}
    _, targets = evaluation_histories(split, "test")
    item_ids = ds.items["item_id"].to_numpy()
    release = ds.items["release_time"].to_numpy()
    oracle_bag = pd.DataFrame(ds.oracle_scores(ds.users["user_id"], item_ids),
                              index=ds.users["user_id"].to_numpy())
    rows = []
    views_by_user = dict(tuple(ds.interactions.groupby("user_id", sort=False)))
    for row, (user, target_id) in enumerate(zip(targets["user_id"], targets["item_id"],
                                                strict=True)):
        views = views_by_user[user]
        history, last = views.iloc[:-1], views.iloc[-1]
        if last["item_id"] != target_id:
            raise RuntimeError(f"{user}: the split's test view is not the last interaction")
        target = int(np.flatnonzero(item_ids == target_id)[0])
        candidates = (release <= last["timestamp"]) & ~np.isin(item_ids, history["item_id"])
        scores = {"bag_oracle": oracle_bag.loc[user].to_numpy(),
                  "bayes_oracle": ds.next_item_scores(
                      user, history, timestamp=last["timestamp"],
                      session_id=last["session_id"], focus="posterior"),
                  "true_focus_oracle": ds.next_item_scores(
                      user, history, timestamp=last["timestamp"],
                      session_id=last["session_id"])}
        out = {"user": user, **{name: float(values[row]) for name, values in model_ndcg.items()},
               **{name: ndcg_at(s, candidates, target) for name, s in scores.items()},
               **target_kinds(ds, history, last)}
        rows.append(out)
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame, scorers) -> dict:
    """Per group: number of targets and mean NDCG@K of every scorer."""
    out = {}
    for group in GROUPS:
        part = frame[frame[group]]
        out[group] = {"n": len(part), **{name: round(float(part[name].mean()), 4)
                                         for name in scorers}}
    return out


def main() -> None:
    parser = common.make_parser(__doc__, seeds=(0,))
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--size", choices=sorted(miniclips.SIZES), default="small")
    args = parser.parse_args()
    ds = miniclips.load_miniclips(size=args.size, seed=args.data_seed)
    split = sq.leave_one_out(ds.interactions[["user_id", "item_id", "timestamp"]])
    side = ds.items.set_index("item_id")[list(bench.SIDE_COLUMNS)]
    release = ds.items.set_index("item_id")["release_time"]
    vectors = bench.session_vectors(ds)
    per_seed = {}
    for seed in args.seeds:
        # sequential.py's own two models, so the settings cannot drift apart.
        benchmark_models = bench.miniclips_models(seed, 25)
        model = benchmark_models["session_sasrec"]
        intent = benchmark_models["session_intent"]
        with common.Stopwatch() as clock:
            for fitted in (model, intent):
                fitted.fit(split.train, vectors, validation=split.validation, item_side=side,
                           release_time=release)
            mix = sq.GeometricMix(model, intent).fit_weight(
                split, candidates=sq.released_candidates(release))
        models = {"session_sasrec": model, "session_intent": intent, "mix": mix}
        table = summarise(breakdown(ds, split, models), (*models, *ORACLES))
        print(f"model seed {seed} (fits {clock.seconds:.0f} s; mix weight {mix.weight})")
        print(pd.DataFrame(table).T.to_string(), flush=True)
        per_seed[seed] = table
    common.emit({"size": args.size, "data_seed": args.data_seed, "k": K,
                 "per_seed": per_seed})


if __name__ == "__main__":
    main()
