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
