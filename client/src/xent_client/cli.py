"""``xent``: the client from the command line.

    xent evaluate --url http://127.0.0.1:8000 predictions.npy labels.npy

reads predictions (N, C, ...) and labels from ``.npy`` (memory-mapped, so files larger than memory
work), ``.npz`` (the file's only array, or ``FILE.npz:NAME``) or ``.csv`` (one row per sample, comma
separated, an optional header line), and prints the mean loss, the count and the time taken; ``--json``
prints one JSON object instead, ``--losses OUT.npy`` saves the per-sample losses. ``--metrics`` adds
the dataset's metrics, combined exactly across the requests as ``Client.evaluate`` combines them
(``--top-k``, ``--calibration-bins``; ``--sample-weight FILE`` weighs the loss and the metrics). Any
error ends it with exit status 1 and one line on stderr saying why (2 for a wrong command line).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xent_client._client import Client
from xent_client._errors import ProblemError, XentError
from xent_client._evaluate import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_ELEMENTS, METRICS

#: The metrics the command line prints: one number each (``entropy``, one per sample, is the Python
#: client's); ``calibration`` prints its expected calibration error, and with ``--json`` its bins.
CLI_METRICS = tuple(name for name in METRICS if name != "entropy")

__all__ = ["load_array", "main"]


def load_array(spec: str, *, labels: bool) -> NDArray[Any]:
    """An array from ``.npy`` (memory-mapped), ``.npz`` (``FILE.npz[:NAME]``) or ``.csv``."""
    path_text, _, key = spec.partition(":") if ".npz:" in spec else (spec, "", "")
    path = Path(path_text)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise XentError(f"{path}: no such file")
    if suffix == ".npy":
        array: NDArray[Any] = np.load(path, mmap_mode="r", allow_pickle=False)
        return array
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if key:
                if key not in names:
                    raise XentError(f"{path} has no array {key!r} (it has {', '.join(names)})")
                return np.asarray(archive[key])
            if len(names) != 1:
                listed = ", ".join(names)
                raise XentError(f"{path} holds {len(names)} arrays ({listed}): name one as {path}:NAME")
            return np.asarray(archive[names[0]])
    if suffix == ".csv":
        return _load_csv(path, labels=labels)
    raise XentError(f"{path}: unknown format {suffix or '(no suffix)'}; use .npy, .npz or .csv")


def _load_csv(path: Path, *, labels: bool) -> NDArray[Any]:
    last: ValueError | None = None
    for skip in (0, 1):  # a header line is skipped if the first line is not numbers
        try:
            array = np.loadtxt(path, delimiter=",", ndmin=1 if labels else 2, skiprows=skip, dtype=np.float64)
        except ValueError as error:
            last = error
            continue
        if labels and array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if labels and array.ndim == 1 and np.all(array == np.round(array)):
            return array.astype(np.int64)
        return array
    raise XentError(f"{path}: not a CSV of numbers ({last})")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xent", description="The cross-entropy service's client.")
    commands = parser.add_subparsers(dest="command", required=True)
    evaluate = commands.add_parser(
        "evaluate",
        help="the mean cross-entropy of a prediction file against a label file",
        description="The mean cross-entropy of PRED against LABELS, computed by the service, exactly as "
        "one request would, however large the files.",
    )
    evaluate.add_argument("pred", metavar="PRED", help="predictions (N, C, ...): .npy, .npz[:NAME] or .csv")
    evaluate.add_argument("labels", metavar="LABELS", help="class indices (N, ...) or class probabilities")
    evaluate.add_argument(
        "--url", default=os.environ.get("XENT_URL"), help="e.g. http://127.0.0.1:8000 (env XENT_URL)"
    )
    evaluate.add_argument(
        "--kind",
        choices=("logits", "probabilities", "log_probabilities"),
        default="logits",
        help="what PRED holds (default logits)",
    )
    evaluate.add_argument(
        "--probabilities",
        dest="kind",
        action="store_const",
        const="probabilities",
        help="same as --kind probabilities",
    )
    evaluate.add_argument("--weight", help="class weights: a .npy/.npz/.csv file, or numbers: 1,2.5,1")
    evaluate.add_argument("--ignore-index", type=int, help="targets to ignore (default -100)")
    evaluate.add_argument("--label-smoothing", type=float, help="in [0, 1] (default 0)")
    evaluate.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    evaluate.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    evaluate.add_argument("--transport", choices=("auto", "json", "binary"), default="auto")
    evaluate.add_argument("--request-bytes", type=int, help="bytes per request (default 4 MiB)")
    evaluate.add_argument(
        "--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, help="the server's XENT_MAX_BODY_BYTES"
    )
    evaluate.add_argument(
        "--max-elements", type=int, default=DEFAULT_MAX_ELEMENTS, help="the server's XENT_MAX_ELEMENTS"
    )
    evaluate.add_argument("--api-key", default=os.environ.get("XENT_API_KEY"), help="(env XENT_API_KEY)")
    evaluate.add_argument("--timeout", type=float, default=120.0, help="seconds per read/write (default 120)")
    evaluate.add_argument("--retries", type=int, default=3)
    evaluate.add_argument("--losses", metavar="OUT.npy", help="save per-sample losses, in input order")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    _metric_arguments(evaluate)
    bar = evaluate.add_mutually_exclusive_group()
    bar.add_argument("--progress", action="store_true", default=None, help="show a progress bar")
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="never show one")
    return parser


def _metric_arguments(evaluate: argparse.ArgumentParser) -> None:
    evaluate.add_argument(
        "--metrics",
        type=_metric_names,
        default=(),
        metavar="NAMES",
        help=f"comma-separated, any of: {', '.join(CLI_METRICS)}",
    )
    evaluate.add_argument("--top-k", type=int, help="k of top_k_accuracy (the service's default 5)")
    evaluate.add_argument("--calibration-bins", type=int, help="bins of calibration (default 15)")
    evaluate.add_argument(
        "--sample-weight", metavar="FILE", help="one weight per target: a .npy/.npz/.csv file (N, ...)"
    )


def _metric_names(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in CLI_METRICS]
    if unknown:
        raise argparse.ArgumentTypeError(f"{', '.join(unknown)}: not one of {', '.join(CLI_METRICS)}")
    return names


def _weight(spec: str | None) -> NDArray[np.float64] | None:
    if spec is None:
        return None
    if Path(spec.partition(":")[0]).suffix.lower() in {".npy", ".npz", ".csv"}:
        return np.asarray(load_array(spec, labels=False), dtype=np.float64).reshape(-1)
    try:
        return np.array([float(item) for item in spec.split(",")])
    except ValueError:
        raise XentError(f"--weight {spec!r} is neither a file nor comma-separated numbers") from None


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    if not args.url:
        raise XentError("no service URL: give --url or set XENT_URL")
    if args.losses is not None and Path(args.losses).suffix.lower() != ".npy":
        raise XentError(f"--losses {args.losses}: the losses are saved as .npy")
    predictions = load_array(args.pred, labels=False)
    labels = load_array(args.labels, labels=True)
    sample_weight = None if args.sample_weight is None else load_array(args.sample_weight, labels=False)
    with Client(
        args.url,
        api_key=args.api_key,
        timeout=args.timeout,
        retries=args.retries,
        max_body_bytes=args.max_body_bytes,
        max_elements=args.max_elements,
    ) as client:
        result = client.evaluate(
            predictions,
            labels,
            kind=args.kind,
            weight=_weight(args.weight),
            ignore_index=args.ignore_index,
            label_smoothing=args.label_smoothing,
            dtype=args.dtype,
            concurrency=args.concurrency,
            losses_path=args.losses,
            progress=args.progress,
            transport=args.transport,
            request_bytes=args.request_bytes,
            sample_weight=sample_weight,
            metrics=args.metrics,
            top_k=args.top_k,
            calibration_bins=args.calibration_bins,
        )
    summary: dict[str, Any] = {
        "loss": result.loss,
        "count": result.count,
        "rows": result.rows,
        "requests": result.requests,
        "seconds": round(result.seconds, 6),
        "rows_per_second": round(result.rows / result.seconds) if result.seconds > 0 else None,
    }
    for name in args.metrics:
        summary[name] = _plain(getattr(result, name))
    return summary


def _plain(value: Any) -> Any:
    """A metric as JSON can hold it: arrays as lists, NaN (an empty calibration bin) as null."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, np.ndarray | list | tuple):
        return [_plain(item) for item in np.asarray(value).tolist()]
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _one_line(error: BaseException) -> str:
    if isinstance(error, ProblemError):
        where = f" (request_id {error.request_id})" if error.request_id else ""
        return f"the service answered {error.status} {error.title}: {error.detail}{where}"
    return " ".join(str(error).split()) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        summary = _evaluate(args)
    except KeyboardInterrupt:
        print("xent: interrupted", file=sys.stderr)
        return 130
    except (XentError, OSError, ValueError) as error:
        print(f"xent: error: {_one_line(error)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary))
    else:
        loss = "null (no target counted)" if summary["loss"] is None else repr(summary["loss"])
        print(f"loss {loss}")
        print(f"count {summary['count']}")
        for name in args.metrics:
            value = summary[name]
            if name == "calibration":
                value = None if value is None else value["ece"]
                name = "calibration_error (ECE)"
            print(f"{name} {'null (no weight counted)' if value is None else repr(value)}")
        print(
            f"time {summary['seconds']:.3f} s for {summary['rows']} rows in {summary['requests']} requests "
            f"({summary['rows_per_second']} rows/s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
