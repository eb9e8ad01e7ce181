"""Object detection: a colour-blob baseline, a Keras grid detector, mAP@0.5, objects -> tags."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from mmrec_lib._validation import check_int, check_number, check_seed
from mmrec_lib.errors import DataError, ParameterError
from mmrec_lib.utils import check_is_fitted

__all__ = [
    "BOX_COLUMNS",
    "DETECTION_COLUMNS",
    "box_iou",
    "non_max_suppression",
    "average_precision",
    "mean_average_precision",
    "ColourBlobDetector",
    "GridDetector",
    "objects_to_tags",
]

#: Columns of a ground-truth box table (the MiniClips ``truth.boxes`` layout);
#: ``image`` identifies a frame (for MiniClips: the pair item_id, frame).
BOX_COLUMNS = ["image", "object_class", "x0", "y0", "x1", "y1"]
#: Columns of a detection table: boxes plus a confidence score.
DETECTION_COLUMNS = [*BOX_COLUMNS, "score"]


def _check_boxes(boxes: pd.DataFrame, name: str, columns=BOX_COLUMNS) -> pd.DataFrame:
    if not isinstance(boxes, pd.DataFrame):
        raise ParameterError(f"{name} must be a DataFrame with columns {columns}")
    missing = [c for c in columns if c not in boxes.columns]
    if missing:
        raise DataError(f"{name} lacks columns {missing}; expected {columns}")
    coords = boxes[["x0", "y0", "x1", "y1"]].to_numpy(dtype=np.float64)
    if len(coords) and (not np.all(np.isfinite(coords)) or np.any(coords[:, 2] < coords[:, 0])
                        or np.any(coords[:, 3] < coords[:, 1])):
        raise DataError(f"{name} has non-finite boxes or boxes with x1 < x0 or y1 < y0")
    return boxes


def box_iou(boxes_a, boxes_b) -> np.ndarray:
    """Intersection over union of every pair of boxes ``(x0, y0, x1, y1)``.

    Introduced in chapter 04.

    Parameters
    ----------
    boxes_a : array of shape (n, 4)
    boxes_b : array of shape (m, 4)

    Returns
    -------
    ndarray of shape (n, m), values in [0, 1]
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    intersection = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - intersection
    return np.where(union > 0, intersection / np.maximum(union, 1e-12), 0.0)


def non_max_suppression(boxes, scores, *, iou_threshold: float = 0.5) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best first.

    Introduced in chapter 04.
    """
    check_number("iou_threshold", iou_threshold, low=0.0, high=1.0)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(boxes),):
        raise ParameterError(f"scores has shape {scores.shape}; expected ({len(boxes)},), "
                             "one per box")
    if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
        raise DataError("boxes or scores contain NaN or infinite values")
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        best = order.pop(0)
        keep.append(best)
        if order:
            overlaps = box_iou(boxes[[best]], boxes[order])[0]
            order = [i for i, overlap in zip(order, overlaps, strict=True)
                     if overlap <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def average_precision(detections: pd.DataFrame, truth: pd.DataFrame, *,
                      iou_threshold: float = 0.5) -> float:
    """Average precision of one class (PASCAL VOC, all-point interpolation).

    Introduced in chapter 04. Detections are ranked by score; each is a true
    positive if it overlaps a not-yet-matched true box of its image with
    IoU >= ``iou_threshold``. AP is the area under the interpolated
    precision-recall curve. With no true box, AP is NaN.
    """
    check_number("iou_threshold", iou_threshold, low=0.0, high=1.0, low_inclusive=False)
    if len(truth) == 0:
        return float("nan")
    if len(detections) == 0:
        return 0.0
    truth_by_image = {image: group[["x0", "y0", "x1", "y1"]].to_numpy(dtype=np.float64)
                      for image, group in truth.groupby("image", sort=False)}
    used = {image: np.zeros(len(boxes), dtype=bool) for image, boxes in truth_by_image.items()}
    ranked = detections.sort_values("score", ascending=False, kind="stable")
    hits = np.zeros(len(ranked))
    for rank, row in enumerate(ranked.itertuples(index=False)):
        boxes = truth_by_image.get(row.image)
        if boxes is None:
            continue
        overlaps = box_iou([[row.x0, row.y0, row.x1, row.y1]], boxes)[0]
        overlaps[used[row.image]] = -1.0
        best = int(np.argmax(overlaps))
        if overlaps[best] >= iou_threshold:
            used[row.image][best] = True
            hits[rank] = 1.0
    true_positives = np.cumsum(hits)
    recall = true_positives / len(truth)
    precision = true_positives / np.arange(1, len(ranked) + 1)
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.nonzero(recall[1:] != recall[:-1])[0]
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def mean_average_precision(detections: pd.DataFrame, truth: pd.DataFrame, *,
                           iou_threshold: float = 0.5) -> dict:
    """mAP@``iou_threshold``: the mean over classes of :func:`average_precision`.

    Introduced in chapter 04.

    Parameters
    ----------
    detections : DataFrame with ``DETECTION_COLUMNS``
    truth : DataFrame with ``BOX_COLUMNS``

    Returns
    -------
    dict with ``map`` (float) and ``per_class`` (dict class -> AP), over the
    classes present in ``truth``.
    """
    _check_boxes(detections, "detections", DETECTION_COLUMNS)
    _check_boxes(truth, "truth")
    check_number("iou_threshold", iou_threshold, low=0.0, high=1.0, low_inclusive=False)
    if len(truth) == 0:
        raise DataError("truth has no boxes: mAP is undefined")
    per_class = {}
    for object_class in sorted(truth["object_class"].unique()):
        per_class[object_class] = average_precision(
            detections[detections["object_class"] == object_class],
            truth[truth["object_class"] == object_class], iou_threshold=iou_threshold)
    return {"map": float(np.mean(list(per_class.values()))), "per_class": per_class}


def _check_frames_and_images(frames, images) -> tuple[np.ndarray, list]:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise DataError(f"frames of shape {frames.shape} and dtype {frames.dtype}: expected "
                        "uint8 (n_frames, height, width, 3)")
    images = list(range(len(frames))) if images is None else list(images)
    if len(images) != len(frames):
        raise ParameterError(f"images has {len(images)} ids for {len(frames)} frames")
    return frames, images


def _background_residual(frame: np.ndarray, iterations: int = 2) -> np.ndarray:
    """Colour distance of each pixel from a per-channel plane fitted to the frame.

    A smooth background (flat colour or linear gradient) is explained by the
    plane; objects are not. The plane is refitted on the pixels it explains
    well, so large objects do not drag it towards their colour.
    """
    height, width, _ = frame.shape
    yy, xx = np.mgrid[0:height, 0:width]
    design = np.column_stack([np.ones(height * width), xx.ravel() / width, yy.ravel() / height])
    pixels = frame.reshape(-1, 3).astype(np.float64)
    inliers = np.ones(len(pixels), dtype=bool)
    for _ in range(iterations):
        coefficients, *_ = np.linalg.lstsq(design[inliers], pixels[inliers], rcond=None)
        residual = np.sqrt(np.sum((pixels - design @ coefficients) ** 2, axis=1))
        inliers = residual <= max(2.5 * np.median(residual), 1.0)
    return residual.reshape(height, width)


def _shape_descriptor(mask: np.ndarray, grid: int = 6) -> np.ndarray:
    """A region's shape: its mask resampled to grid x grid, fill ratio and aspect ratio."""
    from PIL import Image

    image = Image.fromarray(mask.astype(np.uint8) * 255)
    coarse = np.asarray(image.resize((grid, grid), Image.Resampling.BOX), dtype=np.float64) / 255
    height, width = mask.shape
    return np.concatenate([coarse.ravel(), [mask.mean(), np.log(width / height)]])


class ColourBlobDetector(BaseEstimator):
    """Classical baseline: colour segmentation, connected components, shape classifier.

    Introduced in chapter 04. Three steps, no neural network:

    1. *Colour segmentation*: a plane per colour channel models the smooth
       background; pixels farther than ``tolerance`` from it are foreground.
       A 3x3 opening removes thin texture (stripes).
    2. *Connected components* (8-connected) of the foreground become
       candidate boxes; regions under ``min_area`` pixels are dropped.
    3. *Classification*: each region's shape (its mask on a 6x6 grid, fill
       ratio, aspect ratio) goes to a random forest trained in ``fit`` on the
       regions that match a true box (IoU >= 0.5) plus a "background" class
       for the rest; the class probability is the score.

    Parameters
    ----------
    tolerance : float
        Colour distance (0..441 on 0..255 RGB) from the background plane.
    min_area : int
        Smallest region, in pixels.
    seed : int
        Random forest seed.
    """

    def __init__(self, *, tolerance: float = 40.0, min_area: int = 12, seed: int = 0):
        self.tolerance = tolerance
        self.min_area = min_area
        self.seed = seed

    def regions(self, frame: np.ndarray) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
        """Steps 1-2 on one frame: ``[((x0, y0, x1, y1), descriptor), ...]``."""
        from scipy import ndimage

        mask = _background_residual(frame) > self.tolerance
        mask = ndimage.binary_opening(mask, structure=np.ones((3, 3), dtype=bool))
        labels, _ = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
        found = []
        for index, region in enumerate(ndimage.find_objects(labels), start=1):
            if region is None:
                continue
            inside = labels[region] == index
            if inside.sum() < self.min_area:
                continue
            box = (region[1].start, region[0].start, region[1].stop, region[0].stop)
            found.append((box, _shape_descriptor(inside)))
        return found

    def _check_parameters(self) -> None:
        check_number("tolerance", self.tolerance, low=0.0, low_inclusive=False)
        check_int("min_area", self.min_area)
        check_seed(self.seed)

    def fit(self, frames, boxes: pd.DataFrame, *, images=None) -> ColourBlobDetector:
        """Learn the shape classifier from ``frames`` and their true ``boxes`` (``BOX_COLUMNS``)."""
        from sklearn.ensemble import RandomForestClassifier

        self._check_parameters()
        frames, images = _check_frames_and_images(frames, images)
        _check_boxes(boxes, "boxes")
        truth = {image: group for image, group in boxes.groupby("image", sort=False)}
        descriptors, labels = [], []
        for frame, image in zip(frames, images, strict=True):
            true = truth.get(image)
            for box, descriptor in self.regions(frame):
                label = "background"
                if true is not None:
                    overlaps = box_iou([box], true[["x0", "y0", "x1", "y1"]].to_numpy())[0]
                    if overlaps.max() >= 0.5:
                        label = str(true["object_class"].iloc[int(np.argmax(overlaps))])
                descriptors.append(descriptor)
                labels.append(label)
        if not any(label != "background" for label in labels):
            raise DataError("no segmented region matches a true box: nothing to learn from "
                            "(check the boxes, or lower tolerance)")
        self.classifier_ = RandomForestClassifier(n_estimators=100, min_samples_leaf=2,
                                                  random_state=self.seed, n_jobs=1)
        self.classifier_.fit(np.array(descriptors), np.array(labels))
        self.classes_ = sorted(c for c in self.classifier_.classes_ if c != "background")
        return self

    def detect(self, frames, *, images=None) -> pd.DataFrame:
        """Returns a DataFrame with ``DETECTION_COLUMNS`` (one row per classified region)."""
        check_is_fitted(self)
        frames, images = _check_frames_and_images(frames, images)
        boxes, descriptors, owners = [], [], []
        for frame, image in zip(frames, images, strict=True):
            for box, descriptor in self.regions(frame):
                boxes.append(box)
                descriptors.append(descriptor)
                owners.append(image)
        if not boxes:
            return pd.DataFrame(columns=DETECTION_COLUMNS)
        probabilities = self.classifier_.predict_proba(np.array(descriptors))
        names = list(self.classifier_.classes_)
        rows = []
        for owner, box, row in zip(owners, boxes, probabilities, strict=True):
            for object_class in self.classes_:
                score = float(row[names.index(object_class)])
                if score > 0:
                    rows.append((owner, object_class, *box, score))
        return pd.DataFrame(rows, columns=DETECTION_COLUMNS)


class GridDetector(BaseEstimator):
    """A small Keras single-shot detector: a CNN whose output is a grid of box predictions.

    Introduced in chapter 04. The image is cut into ``grid x grid`` cells;
    the cell containing a box centre predicts objectness, the centre offset
    inside the cell, the box width and height (as fractions of the image)
    and the class. Training uses ``model.fit``; detection keeps cells whose
    objectness exceeds ``score_threshold`` and applies per-class non-maximum
    suppression. (YOLO v1 in miniature, one box per cell.)

    Parameters
    ----------
    classes : list of str
        The object classes, in a fixed order.
    input_size : int
        Frames are resized (without keeping the aspect ratio, boxes scale
        with them) to ``input_size x input_size``; must be a multiple of ``grid``.
    grid : int
        Cells per side; ``input_size / grid`` must be a power of two.
    filters : tuple of int
        Widths of the convolutional blocks.
    epochs, batch_size, learning_rate, seed :
        Training settings (``model.fit``, Adam).
    score_threshold : float
        Minimum objectness x class probability of a reported box.
    """

    def __init__(self, classes, *, input_size: int = 64, grid: int = 8,
                 filters: tuple[int, ...] = (16, 32, 32), epochs: int = 20,
                 batch_size: int = 32, learning_rate: float = 3e-3, seed: int = 0,
                 score_threshold: float = 0.05):
        self.classes = classes
        self.input_size = input_size
        self.grid = grid
        self.filters = filters
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.seed = seed
        self.score_threshold = score_threshold

    # ------------------------------------------------------------------ model
    def build_model(self):
        """The Keras model: frames (n, s, s, 3) float in [0, 1] -> (n, grid, grid, 5 + C) logits."""
        from mmrec_lib._env import import_tensorflow

        keras = import_tensorflow().keras
        steps = self.input_size // self.grid
        num_pools = int(round(np.log2(steps)))
        if self.input_size % self.grid or 2 ** num_pools != steps:
            raise ParameterError(f"input_size={self.input_size} / grid={self.grid} must be a "
                                 "power of two")
        inputs = keras.Input((self.input_size, self.input_size, 3), name="frame")
        x = inputs
        for block in range(max(num_pools, len(self.filters))):
            width = self.filters[min(block, len(self.filters) - 1)]
            x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False,
                                    name=f"conv{block + 1}")(x)
            # Batch normalisation lets this small net train in a few epochs.
            x = keras.layers.BatchNormalization(momentum=0.9, name=f"bn{block + 1}")(x)
            x = keras.layers.ReLU(name=f"relu{block + 1}")(x)
            if block < num_pools:
                x = keras.layers.MaxPooling2D(2, name=f"pool{block + 1}")(x)
        x = keras.layers.Conv2D(2 * self.filters[-1], 3, padding="same", activation="relu",
                                name="head_conv")(x)
        outputs = keras.layers.Conv2D(5 + len(self.classes), 1, name="grid_output")(x)
        return keras.Model(inputs, outputs, name="grid_detector")

    def _loss(self):
        from mmrec_lib._env import import_tensorflow

        tf = import_tensorflow()
        num_classes = len(self.classes)

        def grid_loss(target, output):
            objectness = target[..., 0]
            positive = tf.reduce_sum(objectness) + 1.0
            object_loss = tf.reduce_sum(tf.nn.weighted_cross_entropy_with_logits(
                objectness, output[..., 0], pos_weight=5.0)) / positive
            box = tf.sigmoid(output[..., 1:5])
            box_loss = tf.reduce_sum(objectness[..., None] * tf.square(box - target[..., 1:5]))
            class_loss = tf.reduce_sum(objectness * tf.nn.softmax_cross_entropy_with_logits(
                target[..., 5:5 + num_classes], output[..., 5:5 + num_classes]))
            return object_loss + (20.0 * box_loss + class_loss) / positive

        return grid_loss

    def encode_targets(self, boxes: pd.DataFrame, images: list, frame_sizes) -> np.ndarray:
        """True boxes -> the grid tensor ``(n, grid, grid, 5 + C)`` the model learns.

        Channel 0: 1 in the cell holding a box centre; 1-2: centre offset in the
        cell (0..1); 3-4: sqrt of box width and height as fractions of the
        frame; 5...: one-hot class. When two centres share a cell the larger box wins.
        """
        num_classes = len(self.classes)
        lookup = {c: i for i, c in enumerate(self.classes)}
        position = {image: i for i, image in enumerate(images)}
        target = np.zeros((len(images), self.grid, self.grid, 5 + num_classes), np.float32)
        area = np.zeros((len(images), self.grid, self.grid))
        for row in boxes.itertuples(index=False):
            if row.image not in position:
                continue
            if row.object_class not in lookup:
                raise DataError(f"box of unknown class {row.object_class!r}; classes are "
                                f"{list(self.classes)}")
            i = position[row.image]
            height, width = frame_sizes[i]
            cx, cy = (row.x0 + row.x1) / 2 / width, (row.y0 + row.y1) / 2 / height
            bw, bh = (row.x1 - row.x0) / width, (row.y1 - row.y0) / height
            gx = min(int(cx * self.grid), self.grid - 1)
            gy = min(int(cy * self.grid), self.grid - 1)
            if bw * bh <= area[i, gy, gx]:
                continue
            area[i, gy, gx] = bw * bh
            target[i, gy, gx, :5] = (1.0, cx * self.grid - gx, cy * self.grid - gy,
                                     np.sqrt(max(bw, 0.0)), np.sqrt(max(bh, 0.0)))
            target[i, gy, gx, 5:] = 0.0
            target[i, gy, gx, 5 + lookup[row.object_class]] = 1.0
        return target

    def _inputs(self, frames: np.ndarray) -> np.ndarray:
        from PIL import Image

        if frames.shape[1:3] == (self.input_size, self.input_size):
            resized = frames
        else:
            size = (self.input_size, self.input_size)
            resized = np.stack([np.asarray(Image.fromarray(f).resize(
                size, Image.Resampling.BILINEAR)) for f in frames])
        return resized.astype(np.float32) / 255.0

    # --------------------------------------------------------------- fit/detect
    def fit(self, frames, boxes: pd.DataFrame, *, images=None, validation_data=None,
            weights_path=None):
        """Train on ``frames`` and their true ``boxes`` (``BOX_COLUMNS``).

        ``validation_data`` is an optional ``(frames, boxes, images)`` triple.
        ``weights_path`` caches the trained weights and history
        (:func:`mmrec_lib.vision.train_or_load`). Sets ``model_`` and
        ``history_`` (the Keras ``History.history`` dict).
        """
        from mmrec_lib._env import import_tensorflow
        from mmrec_lib.vision._encoders import train_or_load

        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise ParameterError(f"classes={self.classes!r} must be a non-empty list of "
                                 "distinct names")
        for name in ("input_size", "grid", "epochs", "batch_size"):
            check_int(name, getattr(self, name))
        check_number("learning_rate", self.learning_rate, low=0.0, low_inclusive=False)
        check_number("score_threshold", self.score_threshold, low=0.0, high=1.0)
        check_seed(self.seed)
        frames, images = _check_frames_and_images(frames, images)
        _check_boxes(boxes, "boxes")
        tf = import_tensorflow()
        tf.keras.utils.set_random_seed(self.seed)
        sizes = [frames.shape[1:3]] * len(frames)
        x = self._inputs(frames)
        y = self.encode_targets(boxes, images, sizes)
        validation = None
        if validation_data is not None:
            val_frames, val_boxes, val_images = validation_data
            val_frames, val_images = _check_frames_and_images(val_frames, val_images)
            validation = (self._inputs(val_frames),
                          self.encode_targets(val_boxes, val_images,
                                              [val_frames.shape[1:3]] * len(val_frames)))
        self.model_ = self.build_model()
        self.model_.compile(optimizer=tf.keras.optimizers.Adam(self.learning_rate),
                            loss=self._loss())

        def train():
            return self.model_.fit(x, y, validation_data=validation, epochs=self.epochs,
                                   batch_size=self.batch_size, shuffle=True, verbose=0).history

        self.history_ = train_or_load(self.model_, weights_path, train)
        return self

    def detect(self, frames, *, images=None, batch_size: int = 256) -> pd.DataFrame:
        """Returns a DataFrame with ``DETECTION_COLUMNS``, boxes in the frames' pixels."""
        check_is_fitted(self)
        frames, images = _check_frames_and_images(frames, images)
        height, width = frames.shape[1:3]
        output = self.model_.predict(self._inputs(frames), batch_size=batch_size, verbose=0)
        objectness = 1.0 / (1.0 + np.exp(-output[..., 0]))
        box = 1.0 / (1.0 + np.exp(-output[..., 1:5]))
        logits = output[..., 5:]
        probabilities = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probabilities /= probabilities.sum(axis=-1, keepdims=True)
        class_index = probabilities.argmax(axis=-1)
        scores = objectness * probabilities.max(axis=-1)
        rows = []
        for n, image in enumerate(images):
            gy, gx = np.nonzero(scores[n] >= self.score_threshold)
            if gy.size == 0:
                continue
            cx = (gx + box[n, gy, gx, 0]) / self.grid * width
            cy = (gy + box[n, gy, gx, 1]) / self.grid * height
            bw = box[n, gy, gx, 2] ** 2 * width
            bh = box[n, gy, gx, 3] ** 2 * height
            coords = np.column_stack([np.clip(cx - bw / 2, 0, width), np.clip(cy - bh / 2, 0, height),
                                      np.clip(cx + bw / 2, 0, width), np.clip(cy + bh / 2, 0, height)])
            found_scores = scores[n, gy, gx]
            found_classes = class_index[n, gy, gx]
            for c in np.unique(found_classes):
                chosen = np.nonzero(found_classes == c)[0]
                for k in non_max_suppression(coords[chosen], found_scores[chosen]):
                    j = chosen[k]
                    rows.append((image, self.classes[int(c)], *coords[j].tolist(),
                                 float(found_scores[j])))
        return pd.DataFrame(rows, columns=DETECTION_COLUMNS)


def objects_to_tags(detections: pd.DataFrame, *, item_of_image=None, min_score: float = 0.5,
                    min_images: int = 2) -> pd.Series:
    """Turn detections into item tags: classes seen confidently in enough frames.

    Introduced in chapter 04.

    Parameters
    ----------
    detections : DataFrame with ``DETECTION_COLUMNS``
    item_of_image : callable, optional
        Maps an ``image`` id to its item id; by default ``image[0]`` (MiniClips
        images are ``(item_id, frame)`` pairs).
    min_score : float
        Ignore detections below this score.
    min_images : int
        A class becomes a tag of an item if it is found in at least this many
        of the item's frames.

    Returns
    -------
    Series item_id -> tags string (``"|"``-separated, sorted), like ``items.tags``
    """
    _check_boxes(detections, "detections", DETECTION_COLUMNS)
    check_number("min_score", min_score)
    check_int("min_images", min_images)
    if item_of_image is None:
        def item_of_image(image):
            return image[0]
    confident = detections[detections["score"] >= min_score]
    counts: dict = {}
    for image, object_class in zip(confident["image"], confident["object_class"], strict=True):
        key = (item_of_image(image), object_class)
        counts.setdefault(key, set()).add(image)
    tags: dict = {}
    for (item, object_class), found in counts.items():
        if len(found) >= min_images:
            tags.setdefault(item, []).append(object_class)
    return pd.Series({item: "|".join(sorted(classes)) for item, classes in sorted(tags.items())},
                     name="object_tags", dtype=object)
