"""The ``jaxreg`` command: outputs on the built-in data and on a CSV file, and one-line user errors."""

import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxreg import cli
from jaxreg.datasets import load_diabetes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIABETES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")


def read_table(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:], dtype=float)


@pytest.fixture(scope="module")
def builtin_run(tmp_path_factory):
    """The README's main job on the built-in data (smaller grid), run once for the module."""
    out = tmp_path_factory.mktemp("builtin") / "results"
    capture = pytest.MonkeyPatch()
    stdout = io.StringIO()
    capture.setattr(sys, "stdout", stdout)
    try:
        code = cli.main(["path", "--cv", "5", "--alphas", "30", "--out", str(out)])
    finally:
        capture.undo()
    return code, out, stdout.getvalue()


def test_builtin_run_writes_every_file(builtin_run):
    code, out, _ = builtin_run
    assert code == 0
    for name in ("coef_path.csv", "cv.csv", "summary.json", "summary.txt", "path.png", "cv.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "path.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_builtin_coef_table_has_feature_columns_on_original_scale(builtin_run):
    _, out, _ = builtin_run
    header, table = read_table(out / "coef_path.csv")
    assert header == ["alpha", "intercept", *DIABETES]
    assert table.shape == (30, 12)
    alphas, intercept, coef = table[:, 0], table[:, 1], table[:, 2:]
    assert np.all(np.diff(alphas) < 0)
    assert np.all(coef[0] == 0)
    data = load_diabetes()
    # with every coefficient zero the intercept is the mean of y; along the path the
    # original-scale coefficients predict like the fit on standardized features
    assert intercept[0] == pytest.approx(data.y.mean())
    pred = data.X @ coef[-1] + intercept[-1]
    from sklearn.linear_model import Lasso

    Xs = (data.X - data.X.mean(0)) / data.X.std(0)
    ref = Lasso(alpha=alphas[-1], tol=1e-10, max_iter=100_000).fit(Xs, data.y).predict(Xs)
    np.testing.assert_allclose(pred, ref, rtol=0, atol=1e-2 * data.y.std())


def test_builtin_cv_table_and_summary(builtin_run):
    _, out, printed = builtin_run
    header, table = read_table(out / "cv.csv")
    assert header == ["alpha", "n_nonzero", "mean_mse", "stderr_mse"] + [f"fold_{k}" for k in range(1, 6)]
    np.testing.assert_allclose(table[:, 2], table[:, 4:].mean(axis=1), rtol=1e-12)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_samples"] == 442 and summary["n_features"] == 10
    assert summary["alpha_1se"] >= summary["alpha_min"]
    i_min = int(np.argmin(table[:, 2]))
    assert summary["alpha_min"] == pytest.approx(table[i_min, 0])
    at_1se = summary["at_alpha_1se"]
    assert 0 < at_1se["n_selected"] <= summary["at_alpha_min"]["n_selected"] <= 10
    assert set(at_1se["selected"]) <= set(DIABETES)
    assert {"bmi", "s5"} <= set(at_1se["selected"])  # the first two to enter the lasso path
    assert set(at_1se["coef"]) == set(at_1se["selected"])
    text = (out / "summary.txt").read_text()
    assert printed == text
    for word in ("alpha_min", "alpha_1se", "bmi", "s5", "5-fold", "coef_path.csv", "cv.png"):
        assert word in text


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


@pytest.fixture
def toy_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 4)) * [1.0, 10.0, 0.1, 1.0] + [0.0, 5.0, 0.0, -3.0]
    y = 2.0 * X[:, 0] - 0.3 * X[:, 1] + 0.1 * rng.standard_normal(40)
    rows = np.column_stack([X[:, :2], y, X[:, 2:]])
    return write_csv(tmp_path / "toy.csv", ["u", "v", "target", "w", "z"], rows.tolist())


def test_csv_input_with_target_and_elastic_net(toy_csv, tmp_path, capsys):
    out = tmp_path / "res"
    code = cli.main(["path", toy_csv, "--target", "target", "--penalty", "elasticnet",
                     "--l1-ratio", "0.7", "--cv", "3", "--alphas", "10", "--out", str(out), "--quiet"])
    assert code == 0
    assert capsys.readouterr().out == ""  # --quiet
    header, table = read_table(out / "coef_path.csv")
    assert header == ["alpha", "intercept", "u", "v", "w", "z"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["penalty"] == "elasticnet" and summary["l1_ratio"] == 0.7
    assert {"u", "v"} <= set(summary["at_alpha_min"]["selected"])
    # coefficients are on the original scale: close to the generating 2.0 and -0.3 at the small alphas
    assert table[-1, 2] == pytest.approx(2.0, abs=0.1) and table[-1, 3] == pytest.approx(-0.3, abs=0.02)


def test_path_only_ridge_without_plots_of_cv(toy_csv, tmp_path, capsys):
    out = tmp_path / "ridge"
    code = cli.main(["path", toy_csv, "--target", "target", "--penalty", "l2", "--cv", "0", "--alphas", "10",
                     "--out", str(out)])
    assert code == 0
    assert sorted(os.listdir(out)) == ["coef_path.csv", "path.png", "summary.json", "summary.txt"]
    _, table = read_table(out / "coef_path.csv")
    assert np.all(table[:, 2:] != 0)  # ridge shrinks but never zeroes
    assert np.all(np.diff(np.abs(table[:, 2])) > 0)
    assert "at the smallest alpha" in capsys.readouterr().out


def error_line(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("jaxreg: error: ")
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0]


@pytest.mark.parametrize(
    "make, args, expect",
    [
        (None, ["missing.csv", "--target", "y"], "No such file or directory"),
        ("dir", ["--target", "y"], "is a directory"),
        ("empty", ["--target", "y"], "is empty"),
        ("header_only", ["--target", "y"], "no data rows"),
        ("good", ["--target", "nope"], "has no column 'nope'; its columns are: a, b, y"),
        ("text_cell", ["--target", "y"], "line 3: non-numeric value 'abc' in column 'b'"),
        ("underscore_cell", ["--target", "y"], "line 2: non-numeric value '1_0' in column 'a'"),
        ("arabic_digits", ["--target", "y"], "line 3: non-numeric value '\u0661\u0662' in column 'y'"),
        ("fullwidth_digit", ["--target", "y"], "line 2: non-numeric value '\uff15' in column 'b'"),
        ("blank_cell", ["--target", "y"], "line 2: empty cell in column 'a'"),
        ("nan_cell", ["--target", "y"], "non-finite value 'nan'"),
        ("ragged", ["--target", "y"], "line 3: 2 cells, but the header has 3"),
        ("good", [], "--target COL is required"),
        ("good", ["--target", "y", "--cv", "1"], "--cv must be 0"),
        ("good", ["--target", "y", "--alphas", "0"], "--alphas must be at least 2"),
        ("good", ["--target", "y", "--eps", "2"], "--eps must lie in (0, 1)"),
        ("good", ["--target", "y", "--l1-ratio", "0.5"], "--l1-ratio goes with --penalty elasticnet"),
        ("good", ["--target", "y", "--penalty", "elasticnet", "--l1-ratio", "1.5"], "--l1-ratio must lie in"),
        ("good", ["--target", "y", "--cv", "abc"], "invalid int value: 'abc'"),
        ("good", ["--target", "y", "--loss", "hinge"], "invalid choice: 'hinge'"),
        ("good", ["--target", "y", "--cv", "50"], "more folds than the 4 samples"),
        ("good", ["--target", "y", "--loss", "logistic", "--cv", "0"], "LogisticLoss: y must hold labels 0"),
        ("good", ["--target", "y", "--loss", "poisson", "--cv", "0"], "PoissonLoss: y must be non-negative"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(make, args, expect, tmp_path, capsys):
    files = {
        "empty": "",
        "header_only": "a,b,y\n",
        "good": "a,b,y\n1,2,3.5\n2,1,-1\n3,3,0.5\n4,0,2\n",
        "text_cell": "a,b,y\n1,2,3\n4,abc,6\n",
        "underscore_cell": "a,b,y\n1_0,2,3\n4,5,6\n",  # float() reads 10.0
        "arabic_digits": "a,b,y\n1,2,3\n4,5,\u0661\u0662\n",  # float() reads 12.0
        "fullwidth_digit": "a,b,y\n1,\uff15,3\n4,5,6\n",  # float() reads 5.0
        "blank_cell": "a,b,y\n,2,3\n4,5,6\n",
        "nan_cell": "a,b,y\n1,nan,3\n4,5,6\n",
        "ragged": "a,b,y\n1,2,3\n4,5\n",
    }
    data = []
    if make == "dir":
        data = [str(tmp_path)]
    elif make is not None:
        path = tmp_path / "data.csv"
        path.write_text(files[make])
        data = [str(path)]
    code = cli.main(["path", *data, *args, "--out", str(tmp_path / "out")])
    assert code == 2
    assert expect in error_line(capsys)


def test_builtin_data_rejects_another_target(capsys):
    assert cli.main(["path", "--target", "bmi"]) == 2
    assert "target column 'y'" in error_line(capsys)


def test_unwritable_output_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert cli.main(["path", "--cv", "0", "--alphas", "5", "--out", str(blocker / "sub"), "-q"]) == 2
    assert str(blocker) in error_line(capsys)


def test_help_and_no_command(capsys):
    assert cli.main(["path", "--help"]) == 0
    assert "--target" in capsys.readouterr().out
    assert cli.main([]) == 2
    assert "path" in capsys.readouterr().err


def test_progress_bar_draws_stages_on_a_terminal():
    stream = io.StringIO()
    progress = cli.Progress(2, enabled=True, stream=stream)
    with progress.stage("first"):
        pass
    with progress.stage("second"):
        pass
    text = stream.getvalue()
    assert "1/2 first" in text and "2/2 second" in text and "[##########----------]" in text
    assert text.endswith("\r")  # the line is cleared after the last stage
    quiet = io.StringIO()
    with cli.Progress(1, enabled=False, stream=quiet).stage("x"):
        pass
    assert quiet.getvalue() == ""


def run_module(*args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "jaxreg", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_python_dash_m_jaxreg(toy_csv, tmp_path):
    proc = run_module("path", toy_csv, "--target", "target", "--cv", "3", "--alphas", "10", "--out", "res",
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "alpha_1se" in proc.stdout
    assert (tmp_path / "res" / "cv.png").exists()
    assert "\r" not in proc.stderr and "jaxreg" not in proc.stderr  # not a terminal: no progress bar
    proc = run_module("path", "nowhere.csv", "--target", "y", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == "jaxreg: error: No such file or directory: nowhere.csv"


# -- random malformed input: one error line, exit status 2, never a traceback -------------------------


def _not_a_number(text):
    try:
        float(text.strip())
    except ValueError:
        return bool(text.strip())
    return not text.strip().isascii() or "_" in text  # float() reads these; a data file does not mean them


NAMES = ("a", "b", "c", "x1", "age", "ü")
NUMBER = st.floats(-1e6, 1e6, allow_nan=False).map(repr)
NOT_A_NUMBER = st.text(min_size=1, max_size=8).filter(_not_a_number)
NON_FINITE = st.sampled_from(["nan", "NaN", " nan ", "inf", "-inf", "+Infinity", "1e999", "-1e400"])


@st.composite
def table(draw, target="y"):
    """A well-formed table (header, rows of cells) with ``target`` among its columns."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    header = list(names)
    header.insert(draw(st.integers(0, len(names))), target)
    row = st.lists(NUMBER, min_size=len(header), max_size=len(header))
    rows = draw(st.lists(row, min_size=1, max_size=4))
    return header, rows


def to_csv(header, rows):
    f = io.StringIO()
    w = csv.writer(f, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return f.getvalue().encode()


@st.composite
def replace_one_cell(draw, cell):
    header, rows = draw(table())
    i, j = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(header) - 1))
    rows[i][j] = draw(cell)
    return to_csv(header, rows)


@st.composite
def ragged(draw):
    header, rows = draw(table())
    i = draw(st.integers(0, len(rows) - 1))
    k = draw(st.integers(1, len(header) + 2).filter(lambda k: k != len(header)))
    rows[i] = draw(st.lists(NUMBER, min_size=k, max_size=k))
    return to_csv(header, rows)


@st.composite
def without_target(draw):
    header, rows = draw(table())
    j = header.index("y")
    return to_csv([h for h in header if h != "y"] or ["a"], [r[:j] + r[j + 1:] or ["1"] for r in rows])


@st.composite
def duplicate_name(draw):
    header, rows = draw(table())
    header.append(draw(st.sampled_from(header)))
    return to_csv(header, [r + ["1"] for r in rows])


@st.composite
def single_column(draw):
    name = draw(st.sampled_from(("y",) + NAMES))
    return to_csv([name], draw(st.lists(st.lists(NUMBER, min_size=1, max_size=1), max_size=3)))


@st.composite
def binary(draw):
    junk = draw(st.binary(max_size=200))
    at = draw(st.integers(0, len(junk)))
    return junk[:at] + b"\xff" + junk[at:]  # 0xff never occurs in UTF-8


@st.composite
def bad_labels(draw):
    """A well-formed table whose target column a loss cannot take; returns (content, loss)."""
    loss = draw(st.sampled_from(["logistic", "poisson"]))
    header, rows = draw(table())
    j = header.index("y")
    for row in rows:
        row[j] = draw(st.sampled_from(["0", "1"] if loss == "logistic" else ["0", "2", "7"]))
    i = draw(st.integers(0, len(rows) - 1))
    bad = {"logistic": ["0.5", "2", "-1"], "poisson": ["-1", "-0.5"]}[loss]
    if draw(st.booleans()):
        rows[i][j] = draw(st.sampled_from(bad))
    else:  # one class only / all-zero counts
        for row in rows:
            row[j] = "0"
    return to_csv(header, rows), loss


FILE_KINDS = {
    "missing target column": (without_target(), "has no column 'y'"),
    "non-numeric cell": (replace_one_cell(NOT_A_NUMBER), "non-numeric value"),
    "blank cell": (replace_one_cell(st.sampled_from(["", " ", "\t"])), "empty cell"),
    "NaN/inf cell": (replace_one_cell(NON_FINITE), "non-finite value"),
    "empty file": (st.sampled_from([b"", b"\n", b"\r\n\r\n", b" \n\t\n", b"\xef\xbb\xbf", b",,\n"]),
                   "is empty"),
    "header only": (table().map(lambda t: to_csv(t[0], [])) | st.just(b"a,y\n\n\n"), "no data rows"),
    "ragged rows": (ragged(), "cells, but the header has"),
    "single column": (single_column(), "no feature columns|has no column 'y'"),
    "duplicate column name": (duplicate_name(), "duplicate column name"),
    "binary garbage": (binary(), "not a UTF-8 text file"),
}
PATH_KINDS = {
    "nonexistent path": "No such file or directory",
    "directory as path": "is a directory",
    "path below a file": "Not a directory",
    "dangling symlink": "No such file or directory",
    "symlink loop": "Too many levels of symbolic links",
    "name too long": "File name too long",
    "NUL in the name": "contains a NUL character",
    "empty name": "empty string",
}


def make_path(kind, root, name):
    if kind == "nonexistent path":
        return os.path.join(root, name, name + ".csv")
    if kind == "directory as path":
        return root
    if kind == "path below a file":
        open(os.path.join(root, "plain"), "w").close()
        return os.path.join(root, "plain", name + ".csv")
    if kind == "dangling symlink":
        os.symlink(os.path.join(root, "gone.csv"), os.path.join(root, "link.csv"))
        return os.path.join(root, "link.csv")
    if kind == "symlink loop":
        os.symlink(os.path.join(root, "loop.csv"), os.path.join(root, "loop.csv"))
        return os.path.join(root, "loop.csv")
    if kind == "name too long":
        return os.path.join(root, name * (300 // len(name) + 1) + ".csv")
    if kind == "NUL in the name":
        return os.path.join(root, name + "\0.csv")
    return ""


BAD_LABELS = "labels the loss cannot take"
KINDS = sorted(FILE_KINDS) + sorted(PATH_KINDS) + [BAD_LABELS]


@st.composite
def malformed(draw, kind):
    """``(content or None, file name, loss, expected message)``: an input with one defect of ``kind``."""
    name = draw(st.text("abcxyz_-", min_size=1, max_size=6))
    if kind in FILE_KINDS:
        strategy, expect = FILE_KINDS[kind]
        return draw(strategy), name, "squared", expect
    if kind in PATH_KINDS:
        return None, name, "squared", PATH_KINDS[kind]
    content, loss = draw(bad_labels())
    return content, name, loss, "LogisticLoss: y|PoissonLoss: y"


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=4, derandomize=True, database=None, deadline=None)
@given(data=st.data(), cv=st.sampled_from(["0", "2", "5"]))
def test_malformed_input_is_one_error_line_and_exit_code_2(kind, data, cv):
    content, name, loss, expect = data.draw(malformed(kind))
    if kind == BAD_LABELS:
        cv = "0"  # else a file of fewer rows than folds stops at --cv first
    with tempfile.TemporaryDirectory() as root:
        if content is None:
            path = make_path(kind, root, name)
        else:
            path = os.path.join(root, name + ".csv")
            with open(path, "wb") as f:
                f.write(content)
        err, out = io.StringIO(), io.StringIO()
        argv = ["path", path, "--target", "y", "--loss", loss, "--cv", cv, "--alphas", "2", "--max-iter", "1",
                "--out", os.path.join(root, "out"), "-q"]
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = cli.main(argv)  # an exception escaping main would be a traceback
    lines = err.getvalue().splitlines()
    assert code == 2, (content, err.getvalue())
    assert len(lines) == 1 and lines[0].startswith("jaxreg: error: "), err.getvalue()
    assert re.search(expect, lines[0]), (content, lines[0])
    assert "Traceback" not in err.getvalue() and out.getvalue() == ""
