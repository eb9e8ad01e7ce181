"""Next-item recommendation on MovieLens-100k and MiniClips: baselines, GRU4Rec, SASRec, generators.

Leave-one-out per user (latest rating -> test, the one before -> validation,
early stopping on validation NDCG@10), full ranking over the whole catalogue
with the user's seen items removed: HR@10 and NDCG@10, mean and standard
deviation over the seeds (the split is fixed; the seeds change the neural
models' initialisation, dropout and batch order; the other models are
deterministic, so their std is 0). For comparison, SASRec and popularity are
also scored with the sampled protocol (100 negatives, uniform and
popularity-proportional), which inflates every figure.

MiniClips ``small`` (dataset seed 0, model seeds as above): leave-one-out, each
user's last view is the test target, ranked among the clips released by then and
not watched before (the protocol of :meth:`MiniClips.oracle_leave_last_out`, so
the sequential and bag-of-views oracles are the ceiling and the set-based
ceiling). Cold (``miniclips_cold``): the latest-released 10% of clips are new;
each user's first view of one of them is the target, ranked among the new clips
released by then; no model saw a view of a new clip. The content models read
fused text + audio + visual (+ speech when ``features`` offers it) vectors; the
semantic-ID generator can take text + speech + audio + visual (``GENERATOR_SPEECH``);
the ID-only SASRec knows the new clips only as untrained ids (chance).
``side_sasrec`` (:class:`~mmrec_lib.sequential.SideSASRecModel`) adds the public
side information of every clip (creator, series, episode) to its tokens and is
trained over the clips available at each event (released by then, not watched
before in the window), the choice set the users had; on cold clips it knows
their creator. ``session_sasrec`` (:class:`~mmrec_lib.sequential.SessionSASRecModel`,
warm part) adds the time gaps, a vector per user and explicit next-episode /
same-creator terms, and reads the speech (ASR) vectors too. ``session_intent``
(:class:`~mmrec_lib.sequential.SessionIntentModel`, same content) is a full-batch
choice model with a standing taste per user and a hidden intent per session, and
``session_sasrec_x_intent`` their geometric mix (:class:`~mmrec_lib.sequential.GeometricMix`,
weight chosen on validation, reported per seed). The JSON has each one's share of the
sequential and Bayes oracles.

The last line of stdout is the JSON summary::

    {"movielens_100k": {model: {"ndcg@10", "hr@10", "ndcg@10_std", "hr@10_std", ...}},
     "sampled": {model: {"hr@10", "ndcg@10", ...}},
     "miniclips": {model: {...}, "oracle_sequential": .., "oracle_bag": ..},
     "miniclips_cold": {model: {...}, "random": ..}, ...}
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import _common as common  # noqa: I001  (first: Keras 2 before TensorFlow)
import numpy as np
import pandas as pd

from mmrec_lib import sequential as sq
from mmrec_lib.datasets import load_movielens_100k, miniclips

K = 10
# Public side information of a MiniClips clip that SideSASRecModel embeds.
SIDE_COLUMNS = ("creator_id", "series_id", "episode")
# Semantic IDs from text + speech + audio + visual (True) or the shared text + audio + visual
# vectors (False). Measured with TIGER's per-level objective on generator-4 MiniClips (3 seeds):
# with speech warm NDCG@10 0.121 (0.78 of SASRec) but cold 0.240 (1.85x random); without, warm
# 0.113 (0.72) and cold 0.280 (2.16x). Not re-measured with the tree objective.
GENERATOR_SPEECH = False
# --models: run only these MiniClips neural models (None: all); e.g. "sasrec,semantic_id_generator"
# measures the generator and its ratio to SASRec in one run without the content SASRec.
ONLY_MODELS: set | None = None


def wanted(name: str) -> bool:
    return ONLY_MODELS is None or name in ONLY_MODELS


def neural_models(seed: int, epochs: int) -> dict:
    """The tuned MovieLens-100k settings (see the report of issue 19 for the search).

    Both models: full softmax over the 1,682 movies, every position trained
    (``all_windows``), early stopping on validation NDCG@10 with the best epoch's
    weights restored, the same budget (60 epochs) and patience 10.
    SASRec reads the last 100 ratings (batch 40: about the same number of steps per
    epoch as 50 ratings in batches of 64), GRU4Rec the last 50. Measured on an
    AVX-512 AMD EPYC, test NDCG@10 per seed 0 / 1 / 2:

    - SASRec, 50 ratings, 40 epochs (the setting before): 0.114 / 0.108 / 0.107;
      seeds 1 and 2 stopped on a plateau at epochs 36 / 34 (0.110 +- 0.002 on an
      AVX2 machine: the float kernels move the training path); with 80 epochs the
      same (0.115 / 0.108 / 0.107);
    - SASRec, 100 ratings, 40 epochs: 0.112 / 0.110 / 0.112, still rising at the cap
      (best epochs 38-40); 60 epochs: 0.115 / 0.117 / 0.115 (best epochs 50 / 43 / 43);
    - SASRec, 200 ratings (batch 32): 0.096 / 0.117 / 0.117: one seed stops at epoch 29
      on a validation peak (0.111 at epoch 19) that the test does not share;
    - GRU4Rec, 50 ratings: 0.105 / 0.107 / 0.106 with 40 or 60 epochs (best epochs
      31-35); 100 ratings (batch 80): 0.099 / 0.096 / 0.096, although its validation
      NDCG is as high as with 50 (0.110-0.115; not explained).

    Tried and not kept for SASRec: an exponential moving average of the weights
    (momentum 0.99, validated and kept at each epoch's end): a smooth validation
    curve but no test gain (0.111 / 0.117 on seeds 0 / 1, 100 ratings, 60 epochs);
    patience 5 (stopped on a noisy plateau, 0.096 +- 0.008); dropout 0.4 (0.100 vs
    0.107 after 13 epochs).
    """
    shared = {"embedding_dim": 64, "dropout": 0.2, "epochs": epochs, "patience": 10,
              "all_windows": True, "seed": seed}
    return {"gru4rec": sq.GRU4RecModel(max_len=50, learning_rate=2e-3, batch_size=128,
                                       **shared),
            "sasrec": sq.SASRecModel(max_len=100, num_blocks=2, num_heads=1,
                                     learning_rate=1e-3, batch_size=40, **shared)}


def summarise(runs: list[dict]) -> dict:
    out = {}
    for key in (f"ndcg@{K}", f"hr@{K}"):
        values = np.array([run[key] for run in runs])
        out[key] = round(float(values.mean()), 4)
        out[f"{key}_std"] = round(float(values.std(ddof=1)) if len(values) > 1 else 0.0, 4)
    out["runs"] = len(runs)
    out[f"ndcg@{K}_per_seed"] = [round(float(run[f"ndcg@{K}"]), 4) for run in runs]
    out["fit_seconds"] = round(float(np.mean([run["fit_seconds"] for run in runs])), 1)
    if "weight" in runs[0]:  # a geometric mix: the weight chosen on validation per seed
        out["weights"] = [run["weight"] for run in runs]
    if "best_epoch" in runs[0]:
        out["best_epochs"] = [run["best_epoch"] for run in runs]
    return out


def miniclips_vectors(ds) -> tuple:
    """Fused content vectors of every clip (speech included when ``features`` offers it)."""
    from mmrec_lib import features

    modalities = [m for m in ("text", "speech", "audio", "visual") if m in features.MODALITIES]
    tables = features.item_features(ds, modalities=modalities, audio="handcrafted",
                                    visual="handcrafted")
    return sq.fuse_modalities(tables, dim_per_modality=16), modalities


def session_vectors(ds):
    """SessionSASRec's content: text + audio + visual as the others, plus the speech (ASR) block.

    The spoken format, the largest preference term of MiniClips, is heard only in
    the voice-over (ridge R^2 of the format from text + audio + visual 0.24, with
    the transcript vectors 0.88). The transcript vectors of the clips that speak
    are reduced by PCA among themselves (16 dimensions); a silent clip gets zeros
    and a 0 in the last column, "speaks" (a missing modality is not a value).
    """
    from mmrec_lib import features

    tables = features.item_features(ds, modalities=("text", "speech", "audio", "visual"),
                                    audio="handcrafted", visual="handcrafted")
    speech = tables.pop("speech")
    shared = sq.fuse_modalities(tables, dim_per_modality=16)
    talks = ~speech.isna().any(axis=1).to_numpy()
    reduced = sq.fuse_modalities({"speech": speech.loc[talks]}, dim_per_modality=16)
    block = pd.DataFrame(0.0, index=shared.index, columns=[*reduced.columns, "speech_present"])
    block.loc[talks, reduced.columns] = reduced.to_numpy()
    block.loc[talks, "speech_present"] = 1.0
    return pd.concat([shared, block.loc[shared.index]], axis=1).astype(np.float32)


def generator_vectors(ds):
    """The semantic-ID generator's content: text + speech (ASR) + audio + visual, fused.

    OneRec's tokenizer reads caption, tags, ASR transcript, cover and frames. A
    clip without speech has no transcript vector; it gets its text vector
    instead (both are MiniLM sentence vectors), so the speech block does not
    split the clips into "speaks" / "silent" before anything else.
    """
    import pandas as pd

    from mmrec_lib import features

    tables = features.item_features(ds, modalities=("text", "speech", "audio", "visual"),
                                    audio="handcrafted", visual="handcrafted")
    speech = tables["speech"]
    tables["speech"] = pd.DataFrame(
        np.where(speech.isna().to_numpy(), tables["text"].to_numpy(), speech.to_numpy()),
        index=speech.index, columns=speech.columns)
    return sq.fuse_modalities(tables, dim_per_modality=16)


def miniclips_models(seed: int, epochs: int) -> dict:
    """Neural models for MiniClips small (600 clips, 500 users, about 38 views each)."""
    # 500 users give only ~500 training windows: a larger step than on MovieLens.
    shared = {"max_len": 50, "embedding_dim": 64, "num_blocks": 2, "num_heads": 1,
              "dropout": 0.2, "learning_rate": 3e-3, "epochs": epochs, "patience": 6,
              "batch_size": 32, "seed": seed}
    return {"sasrec": sq.SASRecModel(**shared),
            "content_sasrec": sq.ContentSASRecModel(**shared),
            # Its validation ranks released clips only, so it keeps improving for longer;
            # dropout 0.3 (validation NDCG@10 0.214 vs 0.209 at 0.2, seed 0).
            "side_sasrec": sq.SideSASRecModel(**{**shared, "epochs": max(epochs, 40),
                                                 "patience": 8, "dropout": 0.3}),
            # Side SASRec + time gaps + a user vector + explicit next-episode / same-creator
            # terms, no id embedding, speech in its content (session_vectors). It reads the
            # last 100 views: 22 % of the users have more than 50 training views, and they
            # hold half the views (seeds 0 / 1 / 2: 0.273 / 0.274 / 0.276 against 0.263 /
            # 0.267 / 0.269 with 50).
            "session_sasrec": sq.SessionSASRecModel(**{**shared, "max_len": 100,
                                                       "epochs": max(epochs, 60),
                                                       "patience": 8, "dropout": 0.5}),
            # The full-batch choice model with a latent session intent (same content); with
            # session_sasrec it also gives their geometric mix, "session_sasrec_x_intent".
            "session_intent": sq.SessionIntentModel(seed=seed),
            "semantic_id_generator": generator_model(seed, epochs),
            # Only when asked for by name (--models): TIGER's objective, for comparison.
            **({"semantic_id_generator_levels": generator_model(seed, epochs, "levels")}
               if ONLY_MODELS is not None and "semantic_id_generator_levels" in ONLY_MODELS
               else {})}


def generator_model(seed: int, epochs: int, loss: str = "tree"):
    """The semantic-ID generator: SASRec's decoder over code-embedded items, full scoring."""
    # 2 levels x 16 codes: level 1 is a content cluster (purity 0.81 against the hidden
    # category); the last step names the item among the ~3 sharing its full code.
    # loss="tree": every step's probabilities are read off one energy per item, so the steps
    # multiply out to an item softmax that training maximises; loss="levels" (TIGER's per-level
    # heads and cross-entropies) is kept for comparison (--models semantic_id_generator_levels).
    return sq.SemanticIDGenerator(
        levels=2, codebook_size=16, max_len=50, embedding_dim=64, num_blocks=2, num_heads=1,
        dropout=0.2, learning_rate=3e-3, epochs=epochs, patience=5, batch_size=32,
        beam_width=20, scoring="full", loss=loss, seed=seed)


def random_ndcg(split, candidates, item_ids) -> float:
    """Expected NDCG@K of a random order of each target's candidates (chance level)."""
    mask = candidates(np.asarray(item_ids), split.test)
    discounts = 1.0 / np.log2(np.arange(K) + 2)
    sizes = mask.sum(axis=1)
    return float(np.mean([discounts[:min(K, n)].sum() / n for n in sizes if n > 0]))


def run_miniclips(seeds, epochs: int, quick: bool,
                  parts: tuple = ("warm", "session", "cold")) -> tuple[dict, dict]:
    ds = miniclips.load_miniclips(size="tiny" if quick else "small", seed=0)
    events = ds.interactions[["user_id", "item_id", "timestamp"]]
    release = ds.items.set_index("item_id")["release_time"]
    side = ds.items.set_index("item_id")[list(SIDE_COLUMNS)]
    with common.Stopwatch() as clock:
        vectors, modalities = miniclips_vectors(ds)
    print(f"MiniClips content vectors {vectors.shape} from {modalities} "
          f"({clock.seconds:.0f} s)", flush=True)
    code_vectors = (generator_vectors(ds) if GENERATOR_SPEECH and wanted("semantic_id_generator")
                    else vectors)
    with_speech = (session_vectors(ds) if wanted("session_sasrec") or wanted("session_intent")
                   else None)
    oracles = ({**ds.oracle_leave_last_out(k=K), "dataset": ds} if "warm" in parts else {})

    # Warm: every user's last view, among the clips released by then.
    split = sq.leave_one_out(events)
    released = sq.released_candidates(release)
    warm: dict[str, list[dict]] = {}

    def evaluate(store, name, model, data, candidates, fit_split, seed, new=None):
        content = getattr(model, "_needs_item_vectors", False)
        with_side = isinstance(model, (sq.SideSASRecModel, sq.SessionIntentModel))
        extra = {"item_side": side, "release_time": release} if with_side else {}
        table = (code_vectors if isinstance(model, sq.SemanticIDGenerator)
                 else with_speech if isinstance(model, (sq.SessionSASRecModel,
                                                        sq.SessionIntentModel))
                 else vectors)
        with common.Stopwatch() as clock:
            known = table if new is None else table.loc[~table.index.isin(new)]
            if isinstance(model, sq.GeometricMix):  # two fitted models: only the weight
                model.fit_weight(fit_split, candidates=candidates)
            else:
                model.fit(fit_split.train, item_vectors=known if content else None,
                          validation=fit_split.validation, **extra)
            if new is not None:  # new releases join after training, from their content
                if with_side:  # and their creator (public at upload)
                    model.add_items(table.loc[new], item_side=side.loc[new])
                else:
                    model.add_items(table.loc[new])
        result = sq.evaluate_next_item(model, data, k=K, candidates=candidates)
        result["fit_seconds"] = clock.seconds
        store.setdefault(name, []).append(result)
        print(f"{name:>22} seed {seed}: NDCG@10 {result[f'ndcg@{K}']:.4f} "
              f"HR@10 {result[f'hr@{K}']:.4f} ({clock.seconds:.0f} s)", flush=True)

    summary: dict = {}
    if "warm" in parts:
        summary.update(run_warm(warm, evaluate, split, released, seeds, epochs, oracles))
    if "session" in parts:
        summary["session_generation"] = run_sessions(ds, code_vectors, released, seeds,
                                                     epochs)
    cold_summary = (run_cold(evaluate, events, release, vectors, seeds, epochs)
                    if "cold" in parts else {})
    return summary, cold_summary


def oracle_decomposition(ds, split) -> dict:
    """NDCG@10 of the sequential oracle with only some of its terms, and of EASE plus them.

    Shows which part of the oracle's lead is learnable: "observable" terms (creator of
    the last view in the same session, next episodes of watched series) versus the hidden
    session focus, on top of the true preference or of EASE's estimate of it (EASE scores
    standardised over the candidates; its scale is the best of a few on the test targets,
    so those figures are optimistic ceilings, not models).
    """
    from mmrec_lib.datasets.miniclips import _sessions as sessions

    items = ds.items
    position = {item: k for k, item in enumerate(items["item_id"])}
    creator = pd.factorize(items["creator_id"])[0]
    episode = items["episode"].fillna(0).astype(int).to_numpy()
    rows = {(s, e): k for k, (s, e) in enumerate(zip(items["series_id"], episode, strict=True))
            if s}
    following = np.array([rows.get((s, e + 1), -1) if s else -1
                          for s, e in zip(items["series_id"], episode, strict=True)])
    focus = dict(zip(ds.truth.session_ids, ds.truth.session_focus, strict=True))
    release = items["release_time"].to_numpy()
    preference = ds.oracle_scores(ds.users["user_id"], items["item_id"])
    user_row = {user: k for k, user in enumerate(ds.users["user_id"])}
    ease = sq.SequentialEASEModel(l2=50.0).fit(
        split.train, pd.DataFrame({"x": 0.0}, index=items["item_id"]))
    histories, targets = sq.evaluation_histories(split, "test")
    ease_scores = ease.score_histories(histories, unknown="drop")[
        :, ease.item_encoder_.transform(items["item_id"])]
    cases = []
    for row, (user, views) in enumerate(ds.interactions.groupby("user_id", sort=True)):
        if user != targets["user_id"].iloc[row]:
            raise RuntimeError("the leave-one-out targets are not each user's last view")
        history, last = views.iloc[:-1], views.iloc[-1]
        watched = np.array([position[i] for i in history["item_id"]])
        seen = np.zeros(len(items), dtype=bool)
        seen[watched] = True
        available = (release <= last["timestamp"].to_datetime64()) & ~seen
        followed = np.zeros(len(items), dtype=bool)
        nxt = following[watched]
        followed[nxt[nxt >= 0]] = True
        same = history["session_id"].iloc[-1] == last["session_id"]
        terms = {"focus": sessions.W_SESSION_FOCUS * (ds.truth.category
                                                      == focus[last["session_id"]]),
                 "creator": sessions.W_SAME_CREATOR * (creator == creator[watched[-1]]) * same,
                 "episode": sessions.W_NEXT_EPISODE * (followed & ~seen)}
        e = ease_scores[row]
        e = (e - e[available].mean()) / (e[available].std() + 1e-9)
        cases.append((available, position[last["item_id"]], preference[user_row[user]], e,
                      terms))

    def ndcg(score_of) -> float:
        gains = []
        for available, target, *rest in cases:
            scores = np.where(available, score_of(*rest), -np.inf)
            rank = int(np.sum(scores > scores[target]))
            gains.append(1.0 / np.log2(rank + 2) if rank < K else 0.0)
        return round(float(np.mean(gains)), 4)

    out = {"preference": ndcg(lambda p, e, t: p)}
    for names in (("focus",), ("creator",), ("episode",), ("creator", "episode"),
                  ("focus", "creator", "episode")):
        out["preference+" + "+".join(names)] = ndcg(
            lambda p, e, t, names=names: p + sum(t[n] for n in names))
    out["ease"] = ndcg(lambda p, e, t: e)
    out["ease+creator+episode (best scale)"] = max(ndcg(
        lambda p, e, t, a=a: a * e + t["creator"] + t["episode"]) for a in (0.5, 1.0, 1.5, 2.0))
    out["ease+focus+creator+episode (best scale)"] = max(ndcg(
        lambda p, e, t, a=a: a * e + t["focus"] + t["creator"] + t["episode"])
        for a in (0.5, 1.0, 1.5, 2.0))
    return out


def run_warm(warm, evaluate, split, released, seeds, epochs, oracles) -> dict:
    for name, model in {"popularity": sq.SequentialPopularityModel(),
                        "markov": sq.MarkovModel(), "ease": sq.SequentialEASEModel(l2=50.0)
                        }.items():
        evaluate(warm, name, model, split, released, split, 0)
    for seed in seeds:
        models = miniclips_models(seed, epochs)
        for name, model in models.items():
            if wanted(name):
                evaluate(warm, name, model, split, released, split, seed)
        if wanted("session_sasrec") and wanted("session_intent"):
            # Their product, (1 - w) log p_sasrec + w log p_intent, w chosen on validation.
            mix = sq.GeometricMix(models["session_sasrec"], models["session_intent"])
            evaluate(warm, "session_sasrec_x_intent", mix, split, released, split, seed)
            warm["session_sasrec_x_intent"][-1]["weight"] = mix.weight
    summary = {name: summarise(values) for name, values in warm.items()}
    summary["oracle_sequential"] = round(oracles["sequential"], 4)
    summary["oracle_bag"] = round(oracles["bag_of_views"], 4)
    summary["oracle_decomposition"] = oracle_decomposition(oracles["dataset"], split)
    print("oracle decomposition:", summary["oracle_decomposition"], flush=True)
    # The Bayes oracle: true parameters, the session focus inferred from the session's
    # earlier views (the sequential oracle reads the hidden focus, which causes the target).
    summary["oracle_sequential_bayes"] = round(oracles["sequential_bayes"], 4)
    for name in ("side_sasrec", "session_sasrec", "session_intent", "session_sasrec_x_intent"):
        if name in summary:
            summary[f"{name}_share_of_sequential_oracle"] = round(
                summary[name][f"ndcg@{K}"] / oracles["sequential"], 3)
            summary[f"{name}_share_of_bayes_oracle"] = round(
                summary[name][f"ndcg@{K}"] / oracles["sequential_bayes"], 3)
    if "sasrec" in summary:
        best = summary["sasrec"][f"ndcg@{K}"]
        summary["sasrec_share_of_sequential_oracle"] = round(best / oracles["sequential"], 3)
        if "semantic_id_generator" in summary:
            # Same run, same split, same candidates (released by then, not watched).
            summary["generator_over_sasrec"] = round(
                summary["semantic_id_generator"][f"ndcg@{K}"] / best, 3)
            paired = (np.array(summary["semantic_id_generator"][f"ndcg@{K}_per_seed"])
                      / np.array(summary["sasrec"][f"ndcg@{K}_per_seed"]))
            summary["generator_over_sasrec_per_seed"] = [round(float(v), 3) for v in paired]
    return summary


def run_sessions(ds, vectors, released, seeds, epochs) -> dict:
    """List-wise (session) vs next-item generation: one generator, each user's last session."""
    session_split = sq.last_session_split(ds.interactions)
    # Early stopping needs a next item: the last view before the held-out session.
    inner = sq.leave_one_out(session_split.train)
    sessions: dict[str, list[dict]] = {}
    for seed in seeds:
        generator = generator_model(seed, epochs)
        generator.fit(inner.train, vectors, validation=inner.validation)
        for mode in ("next_item", "session"):
            with common.Stopwatch() as clock:
                # The beam is cut to the candidates, so a beam of K already yields K clips.
                result = sq.evaluate_session(generator, session_split, k=K, mode=mode,
                                             candidates=released, beam_width=K)
            result["fit_seconds"] = clock.seconds
            sessions.setdefault(mode, []).append(result)
            print(f"{'generator, ' + mode:>22} seed {seed}: NDCG@10 {result[f'ndcg@{K}']:.4f} "
                  f"recall@10 {result[f'recall@{K}']:.4f} ({clock.seconds:.0f} s)", flush=True)
    return {
        mode: {f"ndcg@{K}": round(float(np.mean([r[f"ndcg@{K}"] for r in runs])), 4),
               f"recall@{K}": round(float(np.mean([r[f"recall@{K}"] for r in runs])), 4),
               f"ndcg@{K}_per_seed": [round(r[f"ndcg@{K}"], 4) for r in runs],
               "num_users": runs[0]["num_users"]}
        for mode, runs in sessions.items()}


def run_cold(evaluate, events, release, vectors, seeds, epochs) -> dict:
    """Cold: the latest 10% releases are new; no model saw a view of one."""
    new_items = release.sort_values(kind="stable").index[-max(1, len(release) // 10):]
    cold = sq.new_item_split(events, new_items)
    inner = sq.leave_one_out(cold.train)
    only_new = sq.released_candidates(release, only=new_items)
    print(f"cold: {len(new_items)} new clips, {len(cold.test)} targets", flush=True)
    cold_runs: dict[str, list[dict]] = {}
    for seed in seeds:
        models = miniclips_models(seed, epochs)
        # The ID-only SASRec gets the new clips as ids it never trained (item_vectors
        # only widens its catalogue): the honest "no content" reference.
        if wanted("sasrec"):
            with common.Stopwatch() as clock:
                models["sasrec"].fit(inner.train, item_vectors=vectors,
                                     validation=inner.validation)
            result = sq.evaluate_next_item(models["sasrec"], cold, k=K, candidates=only_new)
            result["fit_seconds"] = clock.seconds
            cold_runs.setdefault("sasrec", []).append(result)
            print(f"{'sasrec (cold)':>22} seed {seed}: NDCG@10 {result[f'ndcg@{K}']:.4f}",
                  flush=True)
        for name in [n for n in ("content_sasrec", "side_sasrec", "semantic_id_generator",
                                 "semantic_id_generator_levels") if n in models and wanted(n)]:
            # Ranked among exactly the candidates of the other models (only_new minus history).
            evaluate(cold_runs, name, models[name], cold, only_new, inner, seed, new=new_items)
    cold_summary = {name: summarise(values) for name, values in cold_runs.items()}
    cold_summary["random"] = round(random_ndcg(cold, only_new, release.index), 4)
    cold_summary["n_new_items"] = len(new_items)
    cold_summary["n_targets"] = len(cold.test)
    return cold_summary


def main() -> None:
    parser = common.make_parser(__doc__, seeds=(0, 1, 2),
                                quick="one seed, 5 epochs, MiniClips tiny (a smoke test)",
                                epochs=(25, "maximum epochs of the MiniClips neural models"),
                                movielens_epochs=(60, "maximum epochs of GRU4Rec and SASRec on "
                                                      "MovieLens-100k (early stopped)"),
                                jobs=(1, "processes (2 on 2 cores: one TensorFlow fit keeps "
                                         "about one core busy); with --part all and jobs > 1 "
                                         "the MiniClips part runs beside the MovieLens fits"))
    parser.add_argument("--part", default="all",
                        choices=("all", "movielens", "miniclips", "miniclips_warm",
                                 "miniclips_session", "miniclips_cold"))
    parser.add_argument("--models", default=None,
                        help="comma-separated MiniClips neural models to run (default: all)")
    args = parser.parse_args()
    global ONLY_MODELS
    ONLY_MODELS = None if args.models is None else set(args.models.split(","))
    seeds = args.seeds[:1] if args.quick else args.seeds
    epochs = 5 if args.quick else args.epochs
    total = common.Stopwatch()
    output: dict = {}
    parts = (("warm", "session", "cold") if args.part in ("all", "miniclips")
             else (args.part.split("_")[1],) if args.part.startswith("miniclips_") else ())
    pool = miniclips_job = None
    if args.part == "all" and args.jobs > 1 and ONLY_MODELS is None:
        # The MiniClips part in its own process, beside the MovieLens fits (which get the
        # other jobs): each TensorFlow fit keeps about one core busy, so on 2 cores the two
        # parts overlap instead of running one after the other. Same results either way.
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        miniclips_job = pool.submit(run_miniclips, seeds, epochs, args.quick, parts)
    if args.part in ("all", "movielens"):
        ml_jobs = args.jobs - 1 if miniclips_job is not None else args.jobs
        output.update(run_movielens(seeds, 5 if args.quick else args.movielens_epochs,
                                    ml_jobs))
    if miniclips_job is not None:
        output["miniclips"], output["miniclips_cold"] = miniclips_job.result()
        pool.shutdown()
    elif args.part.startswith("miniclips") or args.part == "all":
        output["miniclips"], output["miniclips_cold"] = run_miniclips(seeds, epochs, args.quick,
                                                                      parts)
    if "miniclips" in output:  # the MiniClips budget; the MovieLens one is in movielens_timing
        output["max_epochs"] = epochs
    output.update({"seeds": seeds, "seconds": round(total.elapsed(), 1),
                   "peak_rss_mb": round(common.peak_rss_mb(), 1)})
    common.emit(output)


def movielens_split():
    return sq.leave_one_out(load_movielens_100k().ratings)


def movielens_task(name: str, seed: int, epochs: int) -> dict:
    """Fit one model on the MovieLens-100k split and score it (full and sampled protocols).

    A module-level function so that ``--jobs`` can run it in a separate process:
    the result depends only on (name, seed, epochs), not on where it runs.
    """
    split = movielens_split()
    baselines = {"popularity": sq.SequentialPopularityModel(), "markov": sq.MarkovModel(),
                 "ease": sq.SequentialEASEModel(l2=500.0)}
    model = baselines[name] if name in baselines else neural_models(seed, epochs)[name]
    with common.Stopwatch() as clock:
        model.fit(split.train, validation=split.validation)
    result = sq.evaluate_next_item(model, split, k=K)
    result["fit_seconds"] = clock.seconds
    result["fit_cpu_seconds"] = clock.cpu_seconds
    if hasattr(model, "best_epoch_"):
        result["best_epoch"] = model.best_epoch_
    result["sampled"] = {}
    if name in ("sasrec", "popularity"):
        for sampling in ("uniform", "popularity"):
            key = name if sampling == "uniform" else f"{name}_popularity_negatives"
            result["sampled"][key] = sq.evaluate_next_item(
                model, split, k=K, protocol="sampled", num_negatives=100, sampling=sampling,
                seed=seed)
    print(f"{name:>10} seed {seed}: NDCG@10 {result[f'ndcg@{K}']:.4f} "
          f"HR@10 {result[f'hr@{K}']:.4f} (fit {clock.seconds:.0f} s wall, "
          f"{clock.cpu_seconds:.0f} s CPU, best epoch {result.get('best_epoch', '-')})",
          flush=True)
    return result


def run_movielens(seeds, epochs: int, jobs: int = 1) -> dict:
    """Baselines once (deterministic), GRU4Rec and SASRec per seed; ``jobs`` processes."""
    print(f"leave-one-out sizes: {movielens_split().sizes()}", flush=True)
    tasks = [(name, 0) for name in ("popularity", "markov", "ease")]
    # The long fits first, so that the pool's last minutes are not one lone SASRec.
    tasks = [("sasrec", seed) for seed in seeds] + [("gru4rec", seed) for seed in seeds] + tasks
    with common.Stopwatch() as clock:
        if jobs > 1:

            # spawn: TensorFlow is not fork-safe; every worker imports it afresh.
            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = [pool.submit(movielens_task, name, seed, epochs)
                           for name, seed in tasks]
                results = [future.result() for future in futures]
        else:
            results = [movielens_task(name, seed, epochs) for name, seed in tasks]
    runs: dict[str, list[dict]] = {}
    sampled: dict[str, list[dict]] = {}
    # Sorted by seed, so that the per-seed lists pair up across models.
    for (name, _), result in sorted(zip(tasks, results, strict=True), key=lambda t: t[0][1]):
        runs.setdefault(name, []).append(result)
        for key, figures in result.pop("sampled").items():
            sampled.setdefault(key, []).append(figures)

    summary = {name: summarise(values) for name, values in runs.items()}
    for name, values in runs.items():
        summary[name]["fit_cpu_seconds"] = round(float(np.mean(
            [v["fit_cpu_seconds"] for v in values])), 1)
    sampled_summary = {name: {f"hr@{K}": round(float(np.mean([v[f"hr@{K}"] for v in values])), 4),
                              f"ndcg@{K}": round(float(np.mean(
                                  [v[f"ndcg@{K}"] for v in values])), 4),
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
    # Paired by seed (same seed = same initialisation stream and batch order seed).
    paired = np.array(summary["sasrec"][f"ndcg@{K}_per_seed"]) - np.array(
        summary["gru4rec"][f"ndcg@{K}_per_seed"])
    paired_summary = {"per_seed": [round(float(v), 4) for v in paired],
                      "mean": round(float(paired.mean()), 4),
                      "std": round(float(paired.std(ddof=1)), 4) if len(paired) > 1 else None}
    print("SASRec - GRU4Rec NDCG@10 per seed:", paired_summary)
    timing = {"wall_seconds": round(clock.seconds, 1), "jobs": jobs, "max_epochs": epochs,
              "patience": neural_models(0, epochs)["sasrec"].patience,
              "fit_cpu_seconds_total": round(float(sum(r["fit_cpu_seconds"] for r in results)), 1)}
    print(f"MovieLens-100k part: {timing}", flush=True)
    return {"movielens_100k": summary, "sampled": sampled_summary,
            "sasrec_margin_in_std": margins, "sasrec_minus_gru4rec": paired_summary,
            "movielens_timing": timing}


if __name__ == "__main__":
    main()
