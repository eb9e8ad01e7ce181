"""Video and image understanding: frames, shots, Pillow preprocessing, CNN encoders (chapter 04)."""

from mmrec_lib.vision._clips import (
    CLIP_FRAMES,
    CLIP_SIDE,
    ENCODER_SIDE,
    cached_array,
    clip_embeddings,
    clip_histograms,
    downsample,
    evaluate_shot_detection,
    features_cache_path,
    load_clip_frames,
)
from mmrec_lib.vision._detection import (
    BOX_COLUMNS,
    DETECTION_COLUMNS,
    ColourBlobDetector,
    GridDetector,
    average_precision,
    box_iou,
    mean_average_precision,
    non_max_suppression,
    objects_to_tags,
)
from mmrec_lib.vision._encoders import (
    build_category_classifier,
    build_image_encoder,
    build_video_encoder,
    encode_clips,
    freeze,
    mobilenet_v2_backbone,
    mobilenet_v2_weights_path,
    pretrain_video_encoder,
    train_or_load,
)
from mmrec_lib.vision._features import (
    CLIP_FEATURE_COLUMNS,
    FRAME_FEATURE_COLUMNS,
    HUE_BINS,
    VisualEnergyRegressor,
    clip_feature_table,
    clip_features,
    colourfulness,
    edge_density,
    frame_features,
    motion_energy,
)
from mmrec_lib.vision._io import (
    MAX_DECODED_FRAMES,
    MAX_IMAGE_PIXELS,
    VideoInfo,
    image_to_array,
    load_image,
    probe_video,
    read_frames,
    read_video,
    sample_indices,
    to_rgb,
)
from mmrec_lib.vision._preprocess import Denoiser, Enhancer, Normalizer, ResizeCrop, as_image_list
from mmrec_lib.vision._shots import (
    Shots,
    adaptive_threshold,
    colour_histograms,
    detect_shots,
    histogram_distances,
    keyframes,
    match_cuts,
    rgb_to_hsv,
    shot_detection_scores,
    shots_from_histograms,
)

__all__ = [
    # decoding
    "VideoInfo", "probe_video", "read_frames", "read_video", "sample_indices", "load_image", "to_rgb",
    "image_to_array", "MAX_IMAGE_PIXELS", "MAX_DECODED_FRAMES",
    # preprocessing
    "as_image_list", "Denoiser", "Enhancer", "ResizeCrop", "Normalizer",
    # shots
    "rgb_to_hsv", "colour_histograms", "histogram_distances", "adaptive_threshold", "Shots",
    "detect_shots", "shots_from_histograms", "clip_histograms", "keyframes", "match_cuts", "shot_detection_scores", "evaluate_shot_detection",
    # features
    "HUE_BINS", "FRAME_FEATURE_COLUMNS", "CLIP_FEATURE_COLUMNS", "colourfulness", "edge_density",
    "motion_energy", "frame_features", "clip_features", "clip_feature_table",
    "VisualEnergyRegressor",
    # detection
    "BOX_COLUMNS", "DETECTION_COLUMNS", "box_iou", "non_max_suppression", "average_precision",
    "mean_average_precision", "ColourBlobDetector", "GridDetector", "objects_to_tags",
    # encoders
    "build_image_encoder", "build_video_encoder", "build_category_classifier",
    "pretrain_video_encoder", "freeze", "train_or_load", "encode_clips", "mobilenet_v2_weights_path",
    "mobilenet_v2_backbone",
    # every clip of a data set, cached (mmrec_lib.cache)
    "CLIP_FRAMES", "CLIP_SIDE", "ENCODER_SIDE", "downsample", "features_cache_path",
    "cached_array", "load_clip_frames", "clip_embeddings",
]
