"""Privacy on MiniClips: NDCG@10 and membership leakage of private and non-private models.

Run: ``python benchmarks/privacy.py`` (``--size small`` for the notebook size,
``--epochs``, ``--target-epsilon``, ``--rounds``).

Protocol: MiniClips (tiny by default), temporal leave-last-out without validation
(:func:`mmrec_lib.splits.leave_last_out`). Models:

* ``two_tower``: :class:`DPTwoTower` (item tower on public content, 12 principal
  components of the fused text/audio/visual vectors; user tower = mean of the
  history, on the device) without noise or clipping;
* ``dp_two_tower``: the same at ``--target-epsilon`` (user-level, delta = 1 / n,
  n = training interactions): item biases released once as a Gaussian histogram
  of per-user-normalised counts (noise multiplier 1), the rest trained by DP-SGD
  (full batch, 30 steps, clip 1.5), both composed by the RDP accountant;
* ``mf``: :class:`DPMatrixFactorization` with ``noise_multiplier=0`` and no clip
  (plain SGD with Poisson batches of n / 10, default learning rate);
* ``dp_mf``: the same with clip 0.1 and the noise that gives ``--target-epsilon``
  (example-level, delta = 1 / n) found by :func:`noise_for_epsilon`;
* ``fedavg``: :func:`federated_fit`, a tenth of the users per round, clip 0.5,
  no noise (``epsilon = inf``), learning rate 1000.

Each gets NDCG@10 on the test rows (:func:`mmrec_lib.evaluate`, training items
removed) and the membership-inference AUC (:func:`membership_inference_auc`,
members = train rows, non-members = test rows). The last line of stdout is one
JSON object ``{model: {"ndcg@10": .., "mia_auc": .., "epsilon": ..}, "settings": {..}}``.
"""

from __future__ import annotations

import argparse
import math

import _common as common

import mmrec_lib as mm
from mmrec_lib import features, privacy, splits
from mmrec_lib.datasets.miniclips import load_miniclips


def main() -> None:
    parser = common.make_parser(__doc__, epochs=20, rounds=100)
    parser.add_argument("--size", choices=["tiny", "small"], default="tiny")
    parser.add_argument("--target-epsilon", type=float, default=8.0)
    args: argparse.Namespace = parser.parse_args()
    dataset = load_miniclips(size=args.size)
    split = splits.leave_last_out(dataset.interactions, validation=False)
    train, test = split.train, split.test
    n = len(train)
    batch_size = max(8, n // 10)
    rate = batch_size / n
    steps = int(round(args.epochs / rate))
    delta = 1.0 / n
    noise = privacy.noise_for_epsilon(args.target_epsilon, rate, steps, delta)
    tower = dict(embedding_dim=8, epochs=30.0, sampling_rate=1.0, learning_rate=0.05, seed=0)
    tower_noise = privacy.noise_for_epsilon(args.target_epsilon, 1.0, 30, delta,
                                            release_noise=1.0)
    content = privacy.public_content_vectors(features.item_features(dataset), dim=12)
    common_settings = dict(embedding_dim=16, epochs=args.epochs, batch_size=batch_size, seed=0)
    models = {
        "two_tower": privacy.DPTwoTower(noise_multiplier=0.0, clip=math.inf, **tower),
        "dp_two_tower": privacy.DPTwoTower(noise_multiplier=tower_noise, clip=1.5, delta=delta,
                                           bias_noise_multiplier=1.0, **tower),
        "mf": privacy.DPMatrixFactorization(noise_multiplier=0.0, clip=math.inf,
                                            **common_settings),
        "dp_mf": privacy.DPMatrixFactorization(noise_multiplier=noise, clip=0.1, delta=delta,
                                               **common_settings),
    }
    results = {}
    clock = common.Stopwatch()
    for name, model in models.items():
        with common.Stopwatch() as fit_clock:
            if "two_tower" in name:
                model.fit(train, content)
            else:
                model.fit(train)
        results[name] = {"epsilon": model.epsilon_, "fit_seconds": round(fit_clock.seconds, 2)}
    with common.Stopwatch() as fit_clock:
        models["fedavg"], _ = privacy.federated_fit(
            train, rounds=args.rounds, clients_per_round=max(1, train["user_id"].nunique() // 10),
            local_steps=2, clip=0.5, learning_rate=1000.0, embedding_dim=16, seed=0)
    results["fedavg"] = {"epsilon": math.inf, "fit_seconds": round(fit_clock.seconds, 2)}
    test = test[test["user_id"].isin(train["user_id"]) & test["item_id"].isin(train["item_id"])]
    for name, model in models.items():
        table = mm.evaluate(model, (train, test), k=10, metrics=("ndcg",), n_bootstrap=0)
        results[name]["ndcg@10"] = round(float(table["value"].iloc[0]), 4)
        results[name]["mia_auc"] = round(privacy.membership_inference_auc(model, train, test), 4)
        print(f"{name:12s} eps={results[name]['epsilon']:.2f} ndcg@10={results[name]['ndcg@10']:.4f}"
              f" mia_auc={results[name]['mia_auc']:.4f}")
    for values in results.values():  # JSON has no infinity
        values["epsilon"] = None if math.isinf(values["epsilon"]) else round(values["epsilon"], 3)
    results["settings"] = {"size": args.size, "epochs": args.epochs, "rounds": args.rounds,
                           "batch_size": batch_size, "noise_multiplier": round(noise, 4),
                           "two_tower_noise_multiplier": round(tower_noise, 4),
                           "delta": delta, "target_epsilon": args.target_epsilon,
                           "seconds": round(clock.elapsed(), 1)}
    common.emit(results)


if __name__ == "__main__":
    main()
