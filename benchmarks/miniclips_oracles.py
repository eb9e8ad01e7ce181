"""Sequential oracle vs bag-of-views oracle on MiniClips (leave-last-out NDCG@10, 3 seeds).

Run: ``MMREC_DATA_DIR=<cache> python benchmarks/miniclips_oracles.py``
(``--size tiny`` for a smoke run; ``--seeds 0 1 2``). Builds a missing set first and
reports how long the build took.

Protocol (:meth:`MiniClips.oracle_leave_last_out`): each user's last view is held out;
the candidates are the clips released by then and not watched before. The bag-of-views
oracle ranks them by the true preference score (:meth:`MiniClips.oracle_scores`), the
best any model that sees a user's views as an unordered set can do; the sequential oracle
by the true next-view probabilities given the history (:meth:`MiniClips.next_item_scores`:
the session's focus category, the creator of the previous view in the session and the
next episode of followed series, on top of preference). Also reports the creator-size
distribution, the share of talked-over clips and of clips in a series.
The last stdout line is JSON.
"""

from __future__ import annotations

import _common as common
import numpy as np

from mmrec_lib.datasets import miniclips


def describe(ds: miniclips.MiniClips) -> dict:
    """Catalogue figures of one set: creators, series, speech, sessions."""
    sizes = ds.items.creator_id.value_counts().to_numpy()
    sessions = ds.interactions.groupby("session_id").size()
    return {
        "n_interactions": len(ds.interactions),
        "n_creators": len(sizes),
        "creator_sizes_top5": [int(s) for s in sizes[:5]],
        "creator_size_median": float(np.median(sizes)),
        "creators_with_1_to_3_clips": round(float(np.mean(sizes <= 3)), 3),
        "clips_of_top_10pct_creators": round(
            float(sizes[:max(1, len(sizes) // 10)].sum() / sizes.sum()), 3),
        "speech_share": round(float(ds.items.has_speech.mean()), 3),
        "series_share": round(float((ds.items.series_id != "").mean()), 3),
        "n_series": int(ds.items.series_id[ds.items.series_id != ""].nunique()),
        "n_sessions": len(sessions),
        "session_size_mean": round(float(sessions.mean()), 2),
    }


def main() -> None:
    parser = common.make_parser(__doc__, seeds=(0, 1, 2))
    parser.add_argument("--size", choices=sorted(miniclips.SIZES), default="small")
    args = parser.parse_args()
    per_seed = []
    for seed in args.seeds:
        with common.Stopwatch() as build:
            ds = miniclips.load_miniclips(size=args.size, seed=seed)
        with common.Stopwatch() as score:
            oracles = ds.oracle_leave_last_out(k=10)
        row = {"seed": seed, "load_or_build_s": round(build.seconds, 1),
               "sequential_ndcg10": round(oracles["sequential"], 4),
               "bag_of_views_ndcg10": round(oracles["bag_of_views"], 4),
               "oracle_s": round(score.seconds, 1), **describe(ds)}
        print(row, flush=True)
        per_seed.append(row)
    result = {"size": args.size, "seeds": args.seeds, "per_seed": per_seed}
    for key in ("sequential_ndcg10", "bag_of_views_ndcg10"):
        values = [row[key] for row in per_seed]
        result[key] = {"mean": round(float(np.mean(values)), 4),
                       "std": round(float(np.std(values)), 4)}
    common.emit(result)


if __name__ == "__main__":
    main()
