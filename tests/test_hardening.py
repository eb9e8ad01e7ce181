"""Numbers that are not numbers and small holes at the library's edges (issue 16, classes 4 and 6).

Each bad input has its own test expecting the library's error; the neighbouring
valid inputs are tested too, so a fix cannot refuse what used to work.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import mmrec_lib  # noqa: F401  (Keras 2 environment first)
from mmrec_lib import audio, evaluation, interactions, metrics, similarity, splits, vision
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.text import preprocessing as text_preprocessing

SR = 16000


def _sine(seconds: float = 1.0, frequency: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _ratings(values) -> pd.DataFrame:
    return pd.DataFrame({"user_id": [1] * len(values), "item_id": [7] * len(values),
                         "rating": values})


def _timed(num_rows: int = 6) -> pd.DataFrame:
    return pd.DataFrame({"user_id": [u % 2 for u in range(num_rows)],
                         "item_id": list(range(num_rows)),
                         "timestamp": list(range(num_rows))})


# ------------------------------------------------------------- interactions.deduplicate


def test_deduplicate_sum_refuses_nan_rating():
    with pytest.raises(DataError, match="column 'rating' contains NaN"):
        interactions.deduplicate(_ratings([2.0, np.nan]), keep="sum")


def test_deduplicate_max_refuses_nan_rating():
    with pytest.raises(DataError, match="column 'rating' contains NaN"):
        interactions.deduplicate(_ratings([np.nan, 3.0]), keep="max")


def test_deduplicate_sum_refuses_infinite_rating():
    with pytest.raises(DataError, match="infinite"):
        interactions.deduplicate(_ratings([1.0, np.inf]), keep="sum")


def test_deduplicate_names_another_value_column():
    frame = _ratings([1.0, 2.0]).rename(columns={"rating": "plays"})
    frame.loc[0, "plays"] = np.nan
    with pytest.raises(DataError, match="'plays'"):
        interactions.deduplicate(frame, keep="sum", value_col="plays")


def test_deduplicate_sum_refuses_text_values():
    with pytest.raises(DataError, match="must hold numbers"):
        interactions.deduplicate(_ratings(["a", "b"]), keep="sum")


def test_deduplicate_sum_of_finite_ratings_unchanged():
    assert interactions.deduplicate(_ratings([2.0, 5.5]), keep="sum")["rating"].tolist() == [7.5]


def test_deduplicate_last_ignores_the_value_column():
    # keep="last" does not read the values, so a NaN there is the caller's business.
    result = interactions.deduplicate(_ratings([np.nan, 4.0]), keep="last")
    assert result["rating"].tolist() == [4.0]


# ----------------------------------------------------------------- interactions.IdEncoder


def test_id_encoder_fit_on_empty_list_says_empty():
    with pytest.raises(DataError, match="ids is empty"):
        interactions.IdEncoder().fit([])


def test_id_encoder_fit_on_empty_array_says_empty():
    with pytest.raises(DataError, match="ids is empty"):
        interactions.IdEncoder().fit(np.array([]))


def test_id_encoder_transform_of_empty_list_is_empty():
    encoder = interactions.IdEncoder().fit(["a", "b"])
    result = encoder.transform([])
    assert result.dtype == np.int64 and result.shape == (0,)


def test_id_encoder_transform_of_empty_list_with_int_ids():
    encoder = interactions.IdEncoder().fit([3, 1])
    assert encoder.transform([]).shape == (0,)


def test_id_encoder_float_ids_still_refused():
    with pytest.raises(DataError, match="float dtype"):
        interactions.IdEncoder().fit([1.5, 2.5])


# ---------------------------------------------------------------------------- splits


def test_temporal_split_of_empty_interactions():
    with pytest.raises(DataError, match="interactions is empty"):
        splits.temporal_split(_timed().iloc[:0])


def test_leave_last_out_of_empty_interactions():
    with pytest.raises(DataError, match="interactions is empty"):
        splits.leave_last_out(_timed().iloc[:0])


def test_random_split_of_empty_interactions():
    with pytest.raises(DataError, match="interactions is empty"):
        splits.random_split(_timed().iloc[:0])


def test_stratified_split_of_empty_interactions():
    with pytest.raises(DataError, match="no rows"):
        splits.stratified_split(_timed().iloc[:0])


def test_cold_start_item_split_of_empty_interactions():
    with pytest.raises(DataError, match="interactions is empty"):
        splits.cold_start_item_split(_timed().iloc[:0])


def test_temporal_split_of_one_row_still_works():
    split = splits.temporal_split(_timed(1))
    assert split.sizes() == {"train": 1, "validation": 0, "test": 0}


def test_split_ratio_nan_refused():
    with pytest.raises(ParameterError, match="ratio=nan must be a number, not NaN"):
        splits.random_split(_timed(), ratio=float("nan"))


def test_split_validation_ratio_inf_refused():
    with pytest.raises(ParameterError, match="validation_ratio=inf must be finite"):
        splits.temporal_split(_timed(), validation_ratio=math.inf)


def test_split_ratio_numpy_float_accepted():
    split = splits.random_split(_timed(), ratio=np.float32(0.5), seed=0)
    assert split.sizes()["test"] == 3


def test_split_seed_numpy_int_accepted():
    assert splits.random_split(_timed(), seed=np.int64(3)).sizes()["train"] > 0


def test_split_seed_bool_refused():
    with pytest.raises(ParameterError, match="seed=True"):
        splits.random_split(_timed(), seed=True)


def test_leave_last_out_min_interactions_numpy_int_accepted():
    split = splits.leave_last_out(_timed(), min_interactions=np.int64(3))
    assert split.sizes()["test"] == 2


def test_leave_last_out_min_interactions_float_refused():
    with pytest.raises(ParameterError, match="min_interactions=3.0"):
        splits.leave_last_out(_timed(), min_interactions=3.0)


# ------------------------------------------------------------------------ similarity


def test_cosine_similarity_survives_norm_overflow():
    x = np.array([[1.0, 2.0, 3.0]])
    assert similarity.cosine_similarity(1e200 * x, x)[0, 0] == pytest.approx(1.0)


def test_cosine_similarity_survives_float32_norm_overflow():
    x = np.array([[1.0, -2.0]], dtype=np.float32)
    scores = similarity.cosine_similarity(np.float32(1e20) * x, x)
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-6)


def test_normalize_rows_of_huge_rows_has_unit_norm():
    rows = similarity.normalize_rows(np.array([[3e200, 4e200], [3.0, 4.0]]))
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.6, 0.8]])


def test_normalize_rows_leaves_ordinary_rows_bit_identical():
    vectors = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    huge = np.vstack([vectors, np.full((1, 4), 1e30, dtype=np.float32)])
    expected = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    np.testing.assert_array_equal(similarity.normalize_rows(huge)[:5], expected)


def test_normalize_rows_zero_row_stays_zero():
    rows = similarity.normalize_rows(np.array([[0.0, 0.0], [1e300, 1e300]]))
    np.testing.assert_array_equal(rows[0], [0.0, 0.0])


def test_normalize_rows_eps_nan_refused():
    with pytest.raises(ParameterError, match="eps=nan"):
        similarity.normalize_rows(np.eye(2), eps=float("nan"))


def test_normalize_rows_eps_zero_refused():
    with pytest.raises(ParameterError, match="eps=0"):
        similarity.normalize_rows(np.eye(2), eps=0)


def test_top_k_k_numpy_int_accepted():
    assert similarity.top_k(np.array([0.1, 0.9, 0.5]), np.int64(1)).tolist() == [1]


def test_top_k_k_bool_refused():
    with pytest.raises(ParameterError, match="k=True"):
        similarity.top_k(np.array([0.1, 0.9, 0.5]), True)


def test_blocked_top_k_metric_refused_with_the_choices():
    with pytest.raises(ParameterError, match=r"metric='l2' must be one of \['cosine', 'dot'\]"):
        similarity.blocked_top_k(np.eye(2), np.eye(2), k=1, metric="l2")


# --------------------------------------------------------------------------- metrics


def test_user_auc_nan_scores_refused():
    scores = np.array([[0.1, np.nan, 0.3]])
    relevant = np.array([[True, False, False]])
    with pytest.raises(DataError, match="scores contains NaN"):
        metrics.user_auc(scores, relevant)


def test_metric_k_numpy_int_accepted():
    assert metrics.precision_at_k([[1, 2]], [{1}], k=np.int64(2)) == 0.5


def test_metric_k_float_refused():
    with pytest.raises(ParameterError, match="k=2.0 must be an int >= 1"):
        metrics.recall_at_k([[1, 2]], [{1}], k=2.0)


def test_metric_k_bool_refused():
    with pytest.raises(ParameterError, match="k=True"):
        metrics.ndcg_at_k([[1, 2]], [{1}], k=True)


def test_intra_list_diversity_nan_vectors_refused():
    vectors = np.array([[1.0, 0.0], [np.nan, 1.0]])
    with pytest.raises(DataError, match="item_vectors contains NaN"):
        metrics.intra_list_diversity([[0, 1]], vectors)


# ------------------------------------------------------------------------ evaluation


def test_evaluate_confidence_nan_refused():
    with pytest.raises(ParameterError, match="confidence=nan"):
        evaluation.evaluate(None, None, confidence=float("nan"))


def test_evaluate_confidence_one_refused():
    with pytest.raises(ParameterError, match=r"confidence=1 must be in \(0, 1\)"):
        evaluation.evaluate(None, None, confidence=1)


def test_evaluate_negative_seed_refused():
    with pytest.raises(ParameterError, match="seed=-1"):
        evaluation.evaluate(None, None, seed=-1)


def test_evaluate_n_bootstrap_bool_refused():
    with pytest.raises(ParameterError, match="n_bootstrap=True"):
        evaluation.evaluate(None, None, n_bootstrap=True)


# ------------------------------------------------------------ audio: loudness and level


def test_normalize_loudness_one_nan_sample_refused():
    waveform = _sine()
    waveform[100] = np.nan
    with pytest.raises(DataError, match="waveform contains NaN"):
        audio.normalize_loudness(waveform)


def test_normalize_loudness_inf_sample_refused_for_peak():
    waveform = _sine()
    waveform[5] = np.inf
    with pytest.raises(DataError, match="NaN or infinite"):
        audio.normalize_loudness(waveform, method="peak")


def test_normalize_loudness_stereo_refused():
    with pytest.raises(ParameterError, match="waveform must be 1-D"):
        audio.normalize_loudness(np.stack([_sine(), _sine()], axis=1))


def test_normalize_loudness_empty_refused_for_peak():
    with pytest.raises(DataError, match="waveform is empty"):
        audio.normalize_loudness(np.zeros(0, dtype=np.float32), method="peak")


def test_normalize_loudness_empty_refused_for_rms():
    with pytest.raises(DataError, match="waveform is empty"):
        audio.normalize_loudness([])


def test_normalize_loudness_float64_beyond_float32_refused():
    with pytest.raises(DataError, match="too large for float32"):
        audio.normalize_loudness(np.array([1e300, 0.0]))


def test_normalize_loudness_target_nan_refused():
    with pytest.raises(ParameterError, match="target_db=nan"):
        audio.normalize_loudness(_sine(), target_db=float("nan"))


def test_normalize_loudness_target_minus_inf_refused():
    with pytest.raises(ParameterError, match="target_db=-inf must be finite"):
        audio.normalize_loudness(_sine(), target_db=-math.inf)


def test_normalize_loudness_positive_target_refused():
    with pytest.raises(ParameterError, match="target_db=1 must be <= 0"):
        audio.normalize_loudness(_sine(), target_db=1)


def test_normalize_loudness_valid_clip_reaches_the_target():
    out = audio.normalize_loudness(_sine(), target_db=-20.0)
    assert audio.rms_dbfs(out) == pytest.approx(-20.0, abs=0.01)


def test_normalize_loudness_one_sample_clip_works():
    assert audio.normalize_loudness(np.array([0.5], dtype=np.float32), method="peak")[0] \
        == pytest.approx(0.1, rel=1e-5)


def test_rms_dbfs_nan_is_not_silence():
    with pytest.raises(DataError, match="NaN"):
        audio.rms_dbfs(np.array([0.1, np.nan]))


def test_rms_dbfs_inf_refused():
    with pytest.raises(DataError, match="infinite"):
        audio.rms_dbfs(np.array([0.1, -np.inf]))


def test_rms_dbfs_stereo_refused():
    with pytest.raises(ParameterError, match="1-D"):
        audio.rms_dbfs(np.zeros((4, 2)))


def test_rms_dbfs_silence_is_minus_inf():
    assert audio.rms_dbfs(np.zeros(8)) == -math.inf


def test_rms_dbfs_empty_is_minus_inf():
    assert audio.rms_dbfs([]) == -math.inf


def test_rms_dbfs_full_scale_sine():
    t = np.arange(SR) / SR
    assert audio.rms_dbfs(np.sin(2 * np.pi * 100 * t)) == pytest.approx(-3.0103, abs=1e-3)


# ------------------------------------------------ audio: other float parameters and levels


def test_trim_silence_top_db_nan_refused():
    with pytest.raises(ParameterError, match="top_db=nan"):
        audio.trim_silence(_sine(), sr=SR, top_db=float("nan"))


def test_silence_trimmer_top_db_inf_refused():
    with pytest.raises(ParameterError, match="top_db=inf"):
        audio.SilenceTrimmer(top_db=math.inf).fit([_sine()])


def test_fix_duration_nan_refused():
    with pytest.raises(ParameterError, match="duration=nan"):
        audio.fix_duration(_sine(), sr=SR, duration=float("nan"))


def test_fix_duration_inf_refused():
    with pytest.raises(ParameterError, match="duration=inf must be finite"):
        audio.fix_duration(_sine(), sr=SR, duration=math.inf)


def test_spectral_gate_noise_quantile_nan_refused():
    with pytest.raises(ParameterError, match="noise_quantile=nan"):
        audio.spectral_gate(_sine(), sr=SR, noise_quantile=float("nan"))


def test_spectral_gate_threshold_nan_refused():
    with pytest.raises(ParameterError, match="threshold_db=nan"):
        audio.spectral_gate(_sine(), sr=SR, threshold_db=float("nan"))


def test_spectral_gate_reduction_negative_refused():
    with pytest.raises(ParameterError, match="reduction_db=-1 must be >= 0"):
        audio.spectral_gate(_sine(), sr=SR, reduction_db=-1)


def test_spectral_gate_floor_with_nan_refused():
    floor = np.zeros(513)
    floor[3] = np.nan
    with pytest.raises(DataError, match="noise_floor_db contains NaN"):
        audio.spectral_gate(_sine(), sr=SR, noise_floor_db=floor)


def test_spectral_gate_transformer_checks_threshold():
    with pytest.raises(ParameterError, match="threshold_db=inf"):
        audio.SpectralGate(threshold_db=math.inf).fit([_sine()])


def test_handcrafted_features_of_a_huge_clip_is_a_data_error():
    with pytest.raises(DataError, match="too loud"):
        audio.handcrafted_features(_sine() * np.float32(1e20), sr=SR)


def test_mfcc_of_a_huge_clip_is_a_data_error():
    with pytest.raises(DataError, match="too loud"):
        audio.mfcc(_sine() * np.float32(1e20), sr=SR)


def test_handcrafted_features_in_pcm_units_still_work():
    # A float clip in int16 units (not scaled to [-1, 1]) worked before and still does.
    features = audio.handcrafted_features(_sine() * np.float32(32767), sr=SR)
    assert np.isfinite(features.to_numpy()).all()


def test_log_mel_spectrogram_n_mels_numpy_int_accepted():
    assert audio.log_mel_spectrogram(_sine(0.5), sr=SR, n_mels=np.int64(16)).shape[1] == 16


def test_log_mel_batch_n_frames_bool_refused():
    with pytest.raises(ParameterError, match="n_frames=True"):
        audio.log_mel_batch([_sine(0.5)], sr=SR, n_frames=True)


def test_cnn_encoder_dropout_nan_refused():
    with pytest.raises(ParameterError, match="dropout=nan"):
        audio.build_cnn_encoder(n_frames=64, dropout=float("nan"))


def test_cnn_encoder_filters_entry_must_be_int():
    with pytest.raises(ParameterError, match=r"filters\[1\]='a'"):
        audio.build_cnn_encoder(n_frames=64, filters=(8, "a"))


def test_cnn_encoder_filters_string_refused():
    with pytest.raises(ParameterError, match="filters="):
        audio.build_cnn_encoder(n_frames=64, filters="abc")


def test_transformer_encoder_dropout_one_refused():
    with pytest.raises(ParameterError, match=r"dropout=1.0 must be in \[0.0, 1.0\)"):
        audio.build_transformer_encoder(n_frames=64, dropout=1.0)


def test_regression_head_learning_rate_nan_refused():
    with pytest.raises(ParameterError, match="learning_rate=nan"):
        audio.build_regression_head(None, learning_rate=float("nan"))


# ----------------------------------------------------------------------------- text


def test_segment_chinese_drops_control_characters():
    assert text_preprocessing.segment_chinese("我爱\x00音乐\x07") == ["我", "爱", "音乐"]


def test_segment_chinese_drops_zero_width_and_whitespace_tokens():
    assert text_preprocessing.segment_chinese("电影\u200b \t音乐") == ["电影", "音乐"]


def test_segment_chinese_pos_tags_drop_control_characters():
    words = [word for word, _ in text_preprocessing.segment_chinese("我爱\x00音乐",
                                                                    pos_tags=True)]
    assert words == ["我", "爱", "音乐"]


def test_segment_chinese_only_control_characters_is_empty():
    assert text_preprocessing.segment_chinese("\x00\x01\x7f") == []


def test_segment_chinese_plain_text_unchanged():
    assert text_preprocessing.segment_chinese("我爱音乐") == ["我", "爱", "音乐"]


def test_keyword_extractor_top_k_bool_refused():
    with pytest.raises(ParameterError, match="top_k=True"):
        text_preprocessing.KeywordExtractor(top_k=True).fit(["a text"])


def test_text_normalizer_form_refused_with_the_choices():
    with pytest.raises(ParameterError, match=r"form='NFD' must be one of"):
        text_preprocessing.TextNormalizer(form="NFD").fit()


# ---------------------------------------------------------------------------- vision


def _images(n: int = 2) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(n, 16, 24, 3), dtype=np.uint8)


def test_resize_crop_size_with_a_string_side():
    with pytest.raises(ParameterError, match=r"size\[1\]='a' must be an int in \[1, 8192\]"):
        vision.ResizeCrop(size=(64, "a")).fit(_images())


def test_resize_crop_size_with_a_float_side():
    with pytest.raises(ParameterError, match=r"size\[0\]=2.5"):
        vision.ResizeCrop(size=(2.5, 8)).fit(_images())


def test_resize_crop_size_with_a_bool_side():
    with pytest.raises(ParameterError, match=r"size\[0\]=True"):
        vision.ResizeCrop(size=[True, 8]).fit(_images())


def test_resize_crop_size_pair_still_works():
    out = vision.ResizeCrop(size=(12, 8)).fit_transform(_images())
    assert out.shape == (2, 8, 12, 3)


def test_resize_crop_size_numpy_pair_works():
    out = vision.ResizeCrop(size=(np.int64(6), np.int64(4))).fit_transform(_images())
    assert out.shape == (2, 4, 6, 3)


def test_denoiser_sigma_color_nan_refused():
    with pytest.raises(ParameterError, match="sigma_color=nan"):
        vision.Denoiser(method="bilateral", sigma_color=float("nan")).fit(_images())


def test_denoiser_even_size_refused():
    with pytest.raises(ParameterError, match="size=4 must be an odd int >= 3"):
        vision.Denoiser(size=4).fit(_images())


def test_denoiser_keeps_the_batch_shape():
    images = _images()
    out = vision.Denoiser(method="median", size=3).fit_transform(images)
    assert isinstance(out, np.ndarray) and out.shape == images.shape


def test_enhancer_cutoff_nan_refused():
    with pytest.raises(ParameterError, match="cutoff=nan"):
        vision.Enhancer(cutoff=float("nan")).fit(_images())


def test_enhancer_sharpen_inf_refused():
    with pytest.raises(ParameterError, match="sharpen=inf"):
        vision.Enhancer(sharpen=math.inf).fit(_images())


def test_enhancer_list_input_gives_a_list():
    images = list(_images())
    out = vision.Enhancer(sharpen=0.5).fit_transform(images)
    assert isinstance(out, list) and out[0].shape == images[0].shape


def test_colour_blob_detector_tolerance_nan_refused():
    boxes = pd.DataFrame(columns=["image", "object_class", "x0", "y0", "x1", "y1"])
    with pytest.raises(ParameterError, match="tolerance=nan"):
        vision.ColourBlobDetector(tolerance=float("nan")).fit(_images(), boxes)


def test_mean_average_precision_iou_nan_refused():
    truth = pd.DataFrame([("a", "ball", 0, 0, 4, 4)],
                         columns=["image", "object_class", "x0", "y0", "x1", "y1"])
    found = truth.assign(score=0.9)
    with pytest.raises(ParameterError, match="iou_threshold=nan"):
        vision.mean_average_precision(found, truth, iou_threshold=float("nan"))


def test_visual_energy_regressor_alpha_nan_refused():
    with pytest.raises(ParameterError, match="alpha=nan"):
        vision.VisualEnergyRegressor(alpha=float("nan")).fit(np.eye(3), [0.0, 1.0, 2.0])


def test_non_max_suppression_iou_nan_refused():
    with pytest.raises(ParameterError, match="iou_threshold=nan"):
        vision.non_max_suppression([[0, 0, 4, 4]], [0.9], iou_threshold=float("nan"))


def test_non_max_suppression_nan_score_refused():
    with pytest.raises(DataError, match="NaN or infinite"):
        vision.non_max_suppression([[0, 0, 4, 4], [5, 5, 9, 9]], [0.9, np.nan])


def test_non_max_suppression_one_score_per_box():
    with pytest.raises(ParameterError, match="one per box"):
        vision.non_max_suppression([[0, 0, 4, 4], [5, 5, 9, 9]], [0.9])


def test_non_max_suppression_keeps_separate_boxes():
    keep = vision.non_max_suppression([[0, 0, 4, 4], [5, 5, 9, 9]], [0.2, 0.9])
    assert keep.tolist() == [1, 0]


def test_average_precision_iou_zero_refused():
    truth = pd.DataFrame([("a", "ball", 0, 0, 4, 4)],
                         columns=["image", "object_class", "x0", "y0", "x1", "y1"])
    with pytest.raises(ParameterError, match=r"iou_threshold=0 must be in \(0.0, 1.0\]"):
        vision.average_precision(truth.assign(score=0.5), truth, iou_threshold=0)


def test_edge_density_threshold_nan_refused():
    with pytest.raises(ParameterError, match="threshold=nan"):
        vision.edge_density(_images(), threshold=float("nan"))


def test_recommend_for_evaluation_user_block_zero_refused():
    from mmrec_lib.interest import PopularityModel

    frame = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [1, 2, 1, 3]})
    model = PopularityModel().fit(frame)
    with pytest.raises(ParameterError, match="user_block=0"):
        evaluation.recommend_for_evaluation(model, (frame, frame), 1, user_block=0)
