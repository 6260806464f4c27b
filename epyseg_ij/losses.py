"""EPySeg's training loss and metric (binary cross-entropy + Jaccard, IoU), with a per-pixel weight for partial
annotations.

The targets carry one channel more than the network's outputs: the last is the weight (0 where the annotation says
nothing, 1 elsewhere; ``targets.with_weights``). With every weight 1 both equal segmentation-models'
``bce_jaccard_loss`` and ``iou_score`` (smooth 1e-5, classes averaged, the batch pooled), so fine-tuning a model
trained with those goes on where it stopped.
"""

from __future__ import annotations

from ._tf import tf

SMOOTH = 1e-5


def _split(y_true, y_pred):
    targets, weight = y_true[..., :-1], y_true[..., -1:]
    return targets, tf().cast(y_pred, tf().float32), weight


def _iou(targets, pred, weight):
    """Per-class IoU over the weighted pixels of the whole batch, averaged over classes."""
    tensorflow = tf()
    axes = [0, 1, 2]
    intersection = tensorflow.reduce_sum(weight * targets * pred, axis=axes)
    union = tensorflow.reduce_sum(weight * (targets + pred), axis=axes) - intersection
    return tensorflow.reduce_mean((intersection + SMOOTH) / (union + SMOOTH))


def bce_jaccard_loss(y_true, y_pred):
    """Weighted mean binary cross-entropy plus weighted Jaccard loss (1 - soft IoU)."""
    tensorflow = tf()
    targets, pred, weight = _split(y_true, y_pred)
    bce = tensorflow.keras.backend.binary_crossentropy(targets, pred)
    n = tensorflow.reduce_sum(weight) * tensorflow.cast(tensorflow.shape(targets)[-1], tensorflow.float32)
    mean_bce = tensorflow.reduce_sum(weight * bce) / tensorflow.maximum(n, 1.0)
    return mean_bce + 1 - _iou(targets, pred, weight)


def iou_score(y_true, y_pred):
    """Soft IoU of the predictions over the weighted pixels (segmentation-models' ``iou_score``: no threshold)."""
    return _iou(*_split(y_true, y_pred))
