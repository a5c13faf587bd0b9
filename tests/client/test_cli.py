"""``xent evaluate``: files in, loss out; any error is exit status 1 and one line saying why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.live import LiveServer, free_port
from xent_client.cli import main

SEED_LOGITS = np.array([[-1, 0.5, 2], [-1, 0.5, 3]])
SEED_TARGET = np.array([1, 2])
SEED_LOSS = 0.9184928130357697


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {name: tmp_path / name for name in ("p.npy", "l.npy", "p.npz", "both.npz", "p.csv", "l.csv")}
    np.save(paths["p.npy"], SEED_LOGITS)
    np.save(paths["l.npy"], SEED_TARGET)
    np.savez(paths["p.npz"], SEED_LOGITS)
    np.savez(paths["both.npz"], logits=SEED_LOGITS, target=SEED_TARGET)
    paths["p.csv"].write_text("a,b,c\n-1,0.5,2\n-1,0.5,3\n")  # with a header line
    paths["l.csv"].write_text("1\n2\n")
    return paths


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize(
    ("pred", "labels"),
    [("p.npy", "l.npy"), ("p.npz", "l.csv"), ("p.csv", "l.csv"), ("both.npz:logits", "both.npz:target")],
)
def test_evaluate_reads_npy_npz_csv(
    live_server: LiveServer,
    files: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    pred: str,
    labels: str,
) -> None:
    def where(spec: str) -> str:
        name, _, key = spec.partition(":")
        return str(files[name]) + (f":{key}" if key else "")

    status, out, err = run(capsys, "evaluate", "--url", live_server.url, where(pred), where(labels), "--json")
    assert (status, err) == (0, "")
    summary = json.loads(out)
    assert summary["loss"] == SEED_LOSS and summary["count"] == 2 and summary["rows"] == 2
    assert summary["seconds"] > 0


def test_text_output_losses_and_probabilities(
    live_server: LiveServer, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_path = tmp_path / "losses.npy"
    status, out, _ = run(
        capsys,
        "evaluate",
        "--url",
        live_server.url,
        str(files["p.npy"]),
        str(files["l.npy"]),
        "--losses",
        str(out_path),
    )
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == f"loss {SEED_LOSS!r}" and lines[1] == "count 2" and lines[2].startswith("time ")
    np.testing.assert_allclose(np.load(out_path), [1.7413112966571571, 0.09567432941438228], rtol=1e-15)

    probabilities = tmp_path / "q.npy"
    prediction = [0.1058, 0.1043, 0.0988, 0.1066, 0.0875, 0.0881, 0.1027, 0.1046, 0.1057, 0.0958]
    np.save(probabilities, np.array([prediction]))
    np.save(tmp_path / "four.npy", np.array([4]))
    status, out, _ = run(
        capsys,
        "evaluate",
        "--url",
        live_server.url,
        str(probabilities),
        str(tmp_path / "four.npy"),
        "--probabilities",
        "--json",
    )
    assert status == 0 and json.loads(out)["loss"] == pytest.approx(-np.log(0.0875), rel=1e-15)


def test_every_error_is_one_line_and_exit_status_1(
    live_server: LiveServer, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_labels = tmp_path / "bad.csv"
    bad_labels.write_text("1\n7\n")
    not_csv = tmp_path / "text.csv"
    not_csv.write_text("this,is\nnot,numbers\n")
    dead = f"http://127.0.0.1:{free_port()}"
    cases = [
        ([live_server.url, str(files["p.npy"]), str(tmp_path / "missing.npy")], "missing.npy: no such file"),
        ([live_server.url, str(files["p.npy"]), str(bad_labels)], "422 Unprocessable Entity: target[1] = 7"),
        ([dead, str(files["p.npy"]), str(files["l.npy"]), "--retries", "0"], "cannot reach the service"),
        ([live_server.url, str(not_csv), str(files["l.npy"])], "not a CSV of numbers"),
        ([live_server.url, str(files["both.npz"]), str(files["l.npy"])], "holds 2 arrays"),
        ([live_server.url, str(files["p.npy"]), str(files["l.npy"]), "--losses", "x.txt"], "saved as .npy"),
    ]
    for argv, reason in cases:
        url, *rest = argv
        status, out, err = run(capsys, "evaluate", "--url", url, *rest)
        assert status == 1, argv
        assert out == ""
        assert err.startswith("xent: error: ") and err.count("\n") == 1, err
        assert reason in err, (reason, err)


def test_the_console_script_is_installed(live_server: LiveServer, files: dict[str, Path]) -> None:
    xent = Path(sys.executable).parent / "xent"
    assert xent.is_file(), "the xent command comes with the client: pip install ./client"
    result = subprocess.run(
        [str(xent), "evaluate", "--url", live_server.url, str(files["p.npy"]), str(files["l.npy"]), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["loss"] == SEED_LOSS
    usage = subprocess.run([str(xent), "evaluate"], capture_output=True, text=True, timeout=60, check=False)
    assert usage.returncode == 2 and "PRED" in usage.stderr


def test_metrics_are_those_of_client_evaluate(
    live_server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--metrics`` (with ``--top-k``, ``--calibration-bins``, ``--sample-weight``) prints what
    ``Client.evaluate`` returns for the same call, several requests combined."""
    from xent_client import Client

    rng = np.random.default_rng(7)
    logits, target, weights = rng.normal(size=(3000, 6)), rng.integers(0, 6, 3000), rng.random(3000)
    for name, array in (("p", logits), ("l", target), ("w", weights)):
        np.save(tmp_path / f"{name}.npy", array)
    names = "accuracy,top_k_accuracy,perplexity,brier_score,calibration"
    files = [str(tmp_path / "p.npy"), str(tmp_path / "l.npy")]
    options = ["--top-k", "2", "--calibration-bins", "4", "--sample-weight", str(tmp_path / "w.npy")]
    status, out, err = run(
        capsys, "evaluate", "--url", live_server.url, *files, "--metrics", names, *options,
        "--request-bytes", "100000", "--json",
    )  # fmt: skip
    assert (status, err) == (0, "")
    summary = json.loads(out)
    assert summary["requests"] > 1
    with Client(live_server.url) as client:
        want = client.evaluate(
            logits, target, sample_weight=weights, metrics=names.split(","), top_k=2, calibration_bins=4,
            request_bytes=100000,
        )  # fmt: skip
    assert summary["loss"] == pytest.approx(want.loss, rel=1e-12)
    for name in ("accuracy", "top_k_accuracy", "perplexity", "brier_score"):
        assert summary[name] == pytest.approx(getattr(want, name), rel=1e-12), name
    assert want.calibration is not None
    assert summary["calibration"]["ece"] == pytest.approx(want.calibration["ece"], rel=1e-12)
    assert summary["calibration"]["count"] == want.calibration["count"].tolist()
    # The text form prints one line per metric, the calibration as its expected calibration error.
    status, out, err = run(
        capsys, "evaluate", "--url", live_server.url, *files, "--metrics", "accuracy,calibration", *options
    )
    assert status == 0
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    assert float(lines["accuracy"]) == pytest.approx(want.accuracy, rel=1e-12)
    assert float(lines["calibration_error"].split()[-1]) == pytest.approx(want.calibration["ece"], rel=1e-12)


def test_empty_calibration_bins_are_null_in_json(
    live_server: LiveServer, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(files["p.npy"]), str(files["l.npy"]), "--metrics", "calibration", "--json"]
    status, out, _ = run(capsys, "evaluate", "--url", live_server.url, *argv)
    assert status == 0
    assert "NaN" not in out  # strict JSON
    bins = json.loads(out)["calibration"]
    assert None in bins["accuracy"] and len(bins["edges"]) == 16


def test_an_unknown_or_per_sample_metric_is_a_command_line_error(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    for names in ("entropy", "accuracy,speed"):
        with pytest.raises(SystemExit) as exit_info:
            main(["evaluate", "--url", "http://127.0.0.1:9", str(files["p.npy"]), str(files["l.npy"]),
                  "--metrics", names])  # fmt: skip
        assert exit_info.value.code == 2
        assert "not one of accuracy, top_k_accuracy" in capsys.readouterr().err
