"""The documented examples of the /v1 request bodies, many from the seed article (shown in the
OpenAPI document and Swagger UI)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "BINARY_CROSS_ENTROPY_EXAMPLES",
    "CROSS_ENTROPY_EXAMPLES",
    "DIVERGENCE_EXAMPLES",
    "SOFTMAX_EXAMPLES",
]

SEED_LOGITS: dict[str, Any] = {
    "logits": [[-1, 0.5, 2], [-1, 0.5, 3]],
    "target": [1, 2],
}
SEED_PROBABILITIES: dict[str, Any] = {
    "probabilities": [[0.1058, 0.1043, 0.0988, 0.1066, 0.0875, 0.0881, 0.1027, 0.1046, 0.1057, 0.0958]],
    "target": [4],
    "outputs": ["losses", "predictions", "target_probability"],
}

CROSS_ENTROPY_EXAMPLES: dict[str, dict[str, Any]] = {
    "seed_logits": {
        "summary": "The article's 3-class example (cat, dog, horse)",
        "description": (
            "Logits [[-1, 0.5, 2], [-1, 0.5, 3]] with targets [1, 2] give loss 0.9185, per-sample "
            "losses 1.7413 and 0.0957, softmax rows [0.0391, 0.1753, 0.7856] and "
            "[0.0166, 0.0746, 0.9088], the same as nn.CrossEntropyLoss."
        ),
        "value": SEED_LOGITS,
    },
    "seed_fashion_mnist": {
        "summary": "The article's Fashion-MNIST prediction (probabilities)",
        "description": (
            "A half-trained network's probabilities for an image of class 4 (Coat): "
            "loss -log(0.0875) = 2.4361. The printed probabilities sum to 0.9999 and are accepted "
            "as they are, without renormalisation."
        ),
        "value": SEED_PROBABILITIES,
    },
    "soft_targets_smoothing": {
        "summary": "Soft targets with label smoothing, every output",
        "value": {
            "logits": [[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]],
            "target": [[0.9, 0.1, 0.0], [0.0, 0.2, 0.8]],
            "label_smoothing": 0.1,
            "outputs": ["losses", "softmax", "log_softmax", "grad", "predictions"],
        },
    },
    "weights_and_ignore_index": {
        "summary": "Class weights, an ignored target, summed",
        "value": {
            "logits": [[1.0, 2.0, 0.5], [0.3, 0.1, 2.2], [1.5, -0.5, 0.0]],
            "target": [1, -100, 0],
            "weight": [1.0, 2.0, 0.5],
            "reduction": "sum",
            "outputs": ["losses", "grad", "target_probability"],
        },
    },
    "sample_weight_and_metrics": {
        "summary": "Sample weights and every metric (a validation set's numbers in one call)",
        "description": (
            "The mean is sum_i v_i l_i / sum_i v_i w[t_i] (scikit-learn's convention; no class weights "
            "here): (1.7413 + 2 x 0.0957 + 0.5 x 0.4076) / 3.5 = 0.6104. accuracy 2.5 / 3.5 (the first "
            "sample predicts class 2), top-2 accuracy 1, perplexity exp(0.6104), per-sample entropy, "
            "the multi-class Brier score and a 5-bin calibration (torchmetrics' binning)."
        ),
        "value": {
            "logits": [[-1, 0.5, 2], [-1, 0.5, 3], [2, 1, 0]],
            "target": [1, 2, 0],
            "sample_weight": [1, 2, 0.5],
            "top_k": 2,
            "calibration_bins": 5,
            "outputs": [
                "losses",
                "accuracy",
                "top_k_accuracy",
                "perplexity",
                "entropy",
                "brier_score",
                "calibration",
            ],
        },
    },
}


BINARY_CROSS_ENTROPY_EXAMPLES: dict[str, dict[str, Any]] = {
    "multi_label": {
        "summary": "Multi-label logits, every output",
        "description": "Two samples, three independent labels each.",
        "value": {
            "logits": [[1.2, -0.8, 0.3], [-1.5, 2.0, 0.0]],
            "target": [[1, 0, 1], [0, 1, 0]],
            "outputs": ["losses", "sigmoid", "grad", "predictions"],
        },
    },
    "pos_weight": {
        "summary": "Rare positives weighted up (pos_weight), summed",
        "value": {
            "logits": [[0.5, -2.0], [-1.0, 1.5]],
            "target": [[1, 0], [0, 1]],
            "pos_weight": [3.0, 1.5],
            "reduction": "sum",
        },
    },
    "probabilities": {
        "summary": "Probabilities (nn.BCELoss), one certain mistake clipped",
        "description": "p = 0 for a positive costs -log(2.22e-16) = 36.04 instead of infinity.",
        "value": {"probabilities": [0.9, 0.2, 0.0], "target": [1, 0, 1], "reduction": "none"},
    },
    "sample_weight_and_metrics": {
        "summary": "Sample weights over each sample's labels, accuracy and Brier score",
        "description": (
            "Each sample's weight applies to its three labels; the mean divides by 3 x (2 + 1). "
            "accuracy at threshold 0.5 (probability > 0.5 predicts 1) and the Brier score, weighted."
        ),
        "value": {
            "logits": [[1.2, -0.8, 0.3], [-1.5, 2.0, 0.0]],
            "target": [[1, 0, 1], [0, 1, 0]],
            "sample_weight": [2, 1],
            "outputs": ["losses", "accuracy", "brier_score"],
        },
    },
}

SOFTMAX_EXAMPLES: dict[str, dict[str, Any]] = {
    "seed_logits": {
        "summary": "The article's logits",
        "description": "Rows [0.0391, 0.1753, 0.7856] and [0.0166, 0.0746, 0.9088].",
        "value": {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]]},
    },
    "temperature": {
        "summary": "The same logits at temperature 0.5 (sharper)",
        "value": {"logits": [[-1, 0.5, 2], [-1, 0.5, 3]], "temperature": 0.5},
    },
}

FASHION_MNIST_Q = SEED_PROBABILITIES["probabilities"][0]

DIVERGENCE_EXAMPLES: dict[str, dict[str, Any]] = {
    "seed_fashion_mnist": {
        "summary": "The article's one-hot truth against the network's prediction",
        "description": (
            "p is one-hot at class 4 (Coat); q is the half-trained network's prediction. "
            "H(p, q) = -log(0.0875) = 2.4361 nats; H(p) = 0, so KL(p || q) is also 2.4361."
        ),
        "value": {"p": [[0, 0, 0, 0, 1, 0, 0, 0, 0, 0]], "q": [FASHION_MNIST_Q]},
    },
    "bits": {
        "summary": "Two distributions, in bits",
        "description": "H(p, q) = 1.5 bits, H(p) = 1 bit, KL = 0.5 bit.",
        "value": {"p": [0.5, 0.0, 0.5], "q": [0.25, 0.25, 0.5], "base": "2"},
    },
}
