"""Next-item recommendation on MovieLens-100k: popularity, Markov, EASE, GRU4Rec, SASRec.

Leave-one-out per user (latest rating -> test, the one before -> validation,
early stopping on validation NDCG@10), full ranking over the whole catalogue
with the user's seen items removed: HR@10 and NDCG@10, mean and standard
deviation over the seeds (the split is fixed; the seeds change the neural
models' initialisation, dropout and batch order; the other models are
deterministic, so their std is 0). For comparison, SASRec and popularity are
also scored with the sampled protocol (100 negatives, uniform and
popularity-proportional), which inflates every figure.

The last line of stdout is the JSON summary::

    {"movielens_100k": {model: {"ndcg@10", "hr@10", "ndcg@10_std", "hr@10_std", ...}},
     "sampled": {model: {"hr@10", "ndcg@10", ...}}, ...}
"""

from __future__ import annotations

import _common as common  # noqa: I001  (first: Keras 2 before TensorFlow)
import numpy as np

from mmrec_lib import sequential as sq
from mmrec_lib.datasets import load_movielens_100k

K = 10


def neural_models(seed: int, epochs: int) -> dict:
    """The tuned settings (a few minutes per model on 2 cores)."""
    shared = {"max_len": 50, "embedding_dim": 64, "dropout": 0.2, "epochs": epochs,
              "patience": 5, "all_windows": True, "seed": seed}
    # The GRU steps through the 50 positions one by one: larger batches keep it fast.
    return {"gru4rec": sq.GRU4RecModel(learning_rate=2e-3, batch_size=128, **shared),
            "sasrec": sq.SASRecModel(num_blocks=2, num_heads=1, learning_rate=1e-3,
                                     batch_size=64, **shared)}


def summarise(runs: list[dict]) -> dict:
    out = {}
    for key in (f"ndcg@{K}", f"hr@{K}"):
        values = np.array([run[key] for run in runs])
        out[key] = round(float(values.mean()), 4)
        out[f"{key}_std"] = round(float(values.std(ddof=1)) if len(values) > 1 else 0.0, 4)
    out["runs"] = len(runs)
    out["fit_seconds"] = round(float(np.mean([run["fit_seconds"] for run in runs])), 1)
    if "best_epoch" in runs[0]:
        out["best_epochs"] = [run["best_epoch"] for run in runs]
    return out


def main() -> None:
    parser = common.make_parser(__doc__, seeds=(0, 1, 2),
                                quick="one seed, 5 epochs (a smoke test)",
                                epochs=(25, "maximum epochs of the neural models"))
    args = parser.parse_args()
    seeds = args.seeds[:1] if args.quick else args.seeds
    epochs = 5 if args.quick else args.epochs
    total = common.Stopwatch()
    split = sq.leave_one_out(load_movielens_100k().ratings)
    print(f"leave-one-out sizes: {split.sizes()}", flush=True)

    runs: dict[str, list[dict]] = {}
    sampled: dict[str, list[dict]] = {}

    def run(name: str, model, seed: int) -> None:
        with common.Stopwatch() as clock:
            model.fit(split.train, validation=split.validation)
        result = sq.evaluate_next_item(model, split, k=K)
        result["fit_seconds"] = clock.seconds
        if hasattr(model, "best_epoch_"):
            result["best_epoch"] = model.best_epoch_
        runs.setdefault(name, []).append(result)
        print(f"{name:>10} seed {seed}: NDCG@10 {result[f'ndcg@{K}']:.4f} "
              f"HR@10 {result[f'hr@{K}']:.4f} ({clock.seconds:.0f} s)", flush=True)
        if name in ("sasrec", "popularity"):
            for sampling in ("uniform", "popularity"):
                key = name if sampling == "uniform" else f"{name}_popularity_negatives"
                figures = sq.evaluate_next_item(model, split, k=K, protocol="sampled",
                                                num_negatives=100, sampling=sampling, seed=seed)
                sampled.setdefault(key, []).append(figures)

    baselines = {"popularity": sq.SequentialPopularityModel(), "markov": sq.MarkovModel(),
                 "ease": sq.SequentialEASEModel(l2=500.0)}
    for name, model in baselines.items():
        run(name, model, 0)
    for seed in seeds:
        for name, model in neural_models(seed, epochs).items():
            run(name, model, seed)

    summary = {name: summarise(values) for name, values in runs.items()}
    sampled_summary = {name: {f"hr@{K}": round(float(np.mean([v[f"hr@{K}"] for v in values])), 4),
                              f"ndcg@{K}": round(float(np.mean([v[f"ndcg@{K}"] for v in values])), 4),
                              "num_negatives": 100,
                              "sampling": "popularity" if "negatives" in name else "uniform"}
                       for name, values in sampled.items()}
    sasrec = summary["sasrec"]
    # Margin in units of the larger of the two standard deviations (null with one seed).
    margins = {name: (round((sasrec[f"ndcg@{K}"] - other[f"ndcg@{K}"])
                            / max(sasrec[f"ndcg@{K}_std"], other[f"ndcg@{K}_std"]), 1)
                      if max(sasrec[f"ndcg@{K}_std"], other[f"ndcg@{K}_std"]) > 0 else None)
               for name, other in summary.items() if name != "sasrec"}
    print("SASRec NDCG@10 margin over each model, in (larger) standard deviations:", margins)
    common.emit({"movielens_100k": summary, "sampled": sampled_summary,
                 "sasrec_margin_in_std": margins, "seeds": seeds, "max_epochs": epochs,
                 "seconds": round(total.elapsed(), 1),
                 "peak_rss_mb": round(common.peak_rss_mb(), 1)})


if __name__ == "__main__":
    main()
