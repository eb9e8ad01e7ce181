"""Exact top-10 for 10,000 users x 1,000,000 items x 64 dims: blocked path vs naive argsort.

Run: ``python benchmarks/topk.py [--users 10000 --items 1000000 --dim 64 --k 10]``.

The blocked path (:func:`mmrec_lib.similarity.blocked_top_k`, cosine) never
holds more than one ``user_block x item_block`` float32 tile of scores. The
naive path (full score matrix, then ``np.argsort`` per row) needs
``users x items`` float32 scores plus int64 indices -- 120 GB at full size,
which does not fit on the machine -- so it is timed on ``--naive-users`` users
and extrapolated linearly in the number of users (the JSON says so). The naive
result on those users is also compared with the blocked one.

The last line of stdout is one JSON object with ``blocked_s``, ``naive_s``,
``naive_extrapolated``, ``peak_rss_mb`` (peak resident memory after the blocked
run, inputs included) and ``naive_peak_rss_mb`` (after the naive run).
"""

from __future__ import annotations

import _common as common
import numpy as np

from mmrec_lib import similarity


def main() -> None:
    parser = common.make_parser(__doc__, users=10_000, items=1_000_000, dim=64, k=10,
                                naive_users=200, user_block=1024, item_block=32768)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    users = rng.standard_normal((args.users, args.dim), dtype=np.float32)
    items = rng.standard_normal((args.items, args.dim), dtype=np.float32)
    input_rss = common.peak_rss_mb()

    with common.Stopwatch() as clock:
        indices, scores = similarity.blocked_top_k(users, items, args.k, metric="cosine",
                                                   user_block=args.user_block,
                                                   item_block=args.item_block)
    blocked_s = clock.seconds
    blocked_rss = common.peak_rss_mb()
    print(f"blocked: {blocked_s:.1f} s for {args.users} x {args.items}, "
          f"peak RSS {blocked_rss:.0f} MB (inputs {input_rss:.0f} MB)")

    naive_users = min(args.naive_users, args.users)
    with common.Stopwatch() as clock:
        unit_users = similarity.normalize_rows(users[:naive_users])
        unit_items = similarity.normalize_rows(items)
        full = unit_users @ unit_items.T
        naive_indices = np.argsort(-full, axis=1, kind="stable")[:, :args.k]
    naive_measured_s = clock.seconds
    naive_rss = common.peak_rss_mb()
    agreement = float((naive_indices == indices[:naive_users]).mean())
    extrapolated = naive_users < args.users
    naive_s = naive_measured_s * args.users / naive_users
    print(f"naive: {naive_measured_s:.1f} s for {naive_users} users"
          + (f", extrapolated to {naive_s:.0f} s for {args.users}" if extrapolated else ""))
    print(f"top-{args.k} agreement blocked vs naive on {naive_users} users: {agreement:.4f}")

    common.emit({
        "users": args.users, "items": args.items, "dim": args.dim, "k": args.k,
        "user_block": args.user_block, "item_block": args.item_block,
        "blocked_s": round(blocked_s, 2),
        "naive_s": round(naive_s, 2),
        "naive_extrapolated": extrapolated,
        "naive_users_measured": naive_users,
        "naive_measured_s": round(naive_measured_s, 2),
        "naive_full_matrix_gb": round(args.users * args.items * (4 + 8) / 1e9, 1),
        "peak_rss_mb": round(blocked_rss, 1),
        "input_rss_mb": round(input_rss, 1),
        "naive_peak_rss_mb": round(naive_rss, 1),
        "agreement": agreement,
    })


if __name__ == "__main__":
    main()
