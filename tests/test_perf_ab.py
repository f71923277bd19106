"""The same-run A/B (welavae.perf.ab): its order and statistics against hand-computed answers, and its
processes against two fake installations (a ``welavae/cli.py`` each, no torch) whose runs report known times."""
import json
import subprocess
import sys
import textwrap

import pytest

from welavae.perf.ab import Installation, alternation, ratio_stats, resolve_baseline, run_ab, table


def test_alternation_warms_up_both_then_alternates_who_goes_first():
    r, c = "reference", "current"
    assert alternation(3, 1) == [(r, None), (c, None), (r, 0), (c, 0), (c, 1), (r, 1), (r, 2), (c, 2)]
    assert alternation(2, 0) == [(r, 0), (c, 0), (c, 1), (r, 1)]
    assert alternation(1, 2) == [(r, None), (c, None), (r, None), (c, None), (r, 0), (c, 0)]
    with pytest.raises(ValueError, match="at least one pair"):
        alternation(0)


def test_ratio_stats_by_hand():
    # ratios 2/1, 3/1, 4/2, 5/2, 6/3 = 2, 3, 2, 2.5, 2; sorted 2, 2, 2, 2.5, 3: median 2,
    # quartiles at positions 1 and 3 (linear interpolation over 0…4): 2 and 2.5.
    s = ratio_stats([2, 3, 4, 5, 6], [1, 1, 2, 2, 3])
    assert s["ratios"] == [2.0, 3.0, 2.0, 2.5, 2.0]
    assert (s["median"], s["min"], s["max"], s["q1"], s["q3"], s["iqr"]) == (2.0, 2.0, 3.0, 2.0, 2.5, 0.5)
    assert s["verdict"] == "slower"
    # ratios 1, 2, 3, 4: median 2.5; q1 at position 0.75 → 1.75, q3 at 2.25 → 3.25.
    s = ratio_stats([1, 2, 3, 4], [1, 1, 1, 1])
    assert (s["median"], s["q1"], s["q3"], s["iqr"], s["verdict"]) == (2.5, 1.75, 3.25, 1.5, "slower")
    # ratios 0.9, 1.1, 1.0: the quartiles 0.95 and 1.05 straddle 1.
    assert ratio_stats([0.9, 1.1, 1.0], [1, 1, 1])["verdict"] == "within the spread"
    assert ratio_stats([0.5, 0.8], [1, 1])["verdict"] == "faster"
    with pytest.raises(ValueError, match="equally long"):
        ratio_stats([1, 2], [1])


FAKE_CLI = """
import json, os, sys, time
import welavae
args = sys.argv[1:]
if "--new-flag" in args and welavae.VERSION == "old":
    print("welavae: error: unrecognized arguments: --new-flag", file=sys.stderr)
    sys.exit(2)
if "--out" in args:
    out = args[args.index("--out") + 1]
    os.makedirs(out)  # fails if a run got another run's directory
    with open(os.path.join(out, "status.json"), "w") as f:
        json.dump({"seconds": welavae.SECONDS, "rows": [{"seconds": 0}, {"seconds": 2 * welavae.SECONDS}]}, f)
time.sleep(0.01)
"""


def fake(root, version, seconds):
    pkg = root / "welavae"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(f"VERSION = {version!r}\nSECONDS = {seconds}\n")
    (pkg / "cli.py").write_text(textwrap.dedent(FAKE_CLI))
    return root


def test_two_fake_installations_alternate_and_a_row_the_reference_refuses_is_refused(tmp_path):
    ref = resolve_baseline(str(fake(tmp_path / "old", "old", 2.0)))
    cur = Installation(sys.executable, str(fake(tmp_path / "new", "new", 3.0)), "new")
    assert ref.path == str((tmp_path / "old").resolve()) and ref.python == sys.executable
    rows = [{"name": "own clock", "argv": ["train", "--out", "{out}"], "seconds_from": "{out}/status.json:seconds"},
            {"name": "new flag", "argv": ["train", "--new-flag"]},
            {"name": "wall", "argv": ["train"]}]
    lines = []
    result = run_ab(rows, ref, cur, pairs=3, warmup=1, log=lines.append)
    own, new, wall = result["rows"]
    # Each run reports its own version's number: 3.0 / 2.0 in every pair.
    assert own["seconds"] == {"reference": [2.0] * 3, "current": [3.0] * 3}
    assert own["ratio"]["ratios"] == [1.5] * 3 and own["ratio"]["verdict"] == "slower"
    assert [(r["side"], r["pair"]) for r in own["runs"]] == alternation(3, 1)
    assert all(r["returncode"] == 0 and r["error"] is None and r["wall_seconds"] > 0 for r in own["runs"])
    # The reference does not know the flag: refused after its first run, in one sentence.
    assert new["refused"] == (f"row 'new flag' fails on the reference version {ref.label} (exit 2: welavae: error: "
                              "unrecognized arguments: --new-flag); the A/B runs the same command on both, "
                              "so give it only flags both versions know")
    assert len(new["runs"]) == 1
    assert wall["ratio"]["min"] > 0 and len(wall["ratio"]["ratios"]) == 3
    assert len(lines) == 8 + 1 + 8
    # A dotted key reaches into lists; a missing one refuses the row.
    nested = dict(rows[0], seconds_from="{out}/status.json:rows.1.seconds")
    assert run_ab([nested], ref, cur, pairs=1, warmup=0)["rows"][0]["seconds"] == {"reference": [4.0], "current": [6.0]}
    missing = run_ab([dict(rows[0], seconds_from="{out}/status.json:rows.2.seconds")], ref, cur, pairs=1)["rows"][0]
    assert missing["refused"].startswith(f"row 'own clock': the reference version {ref.label} ran but wrote no time: "
                                         "no number 'rows.2.seconds' in ")
    assert missing["refused"].endswith("status.json (IndexError)")
    json.dumps(result)  # ready for JSON
    assert "refused" in table(result) and "median 1.500" in table(result)


def test_a_failure_on_the_current_side_and_a_timeout_are_refused(tmp_path):
    ref = Installation(sys.executable, str(fake(tmp_path / "new", "new", 1.0)), "new")
    cur = Installation(sys.executable, str(fake(tmp_path / "old", "old", 1.0)), "old")
    out = run_ab([{"name": "flag", "argv": ["--new-flag"]}], ref, cur, pairs=1)["rows"][0]
    assert out["refused"].startswith("row 'flag' fails on the current version old (exit 2")
    slow = tmp_path / "slow"
    fake(slow, "new", 1.0)
    (slow / "welavae" / "cli.py").write_text("import time\ntime.sleep(30)\n")
    out = run_ab([{"name": "slow", "argv": []}], Installation(sys.executable, str(slow), "slow"), ref, pairs=1,
                 timeout=0.5)["rows"][0]
    assert "fails on the reference version slow (timed out)" in out["refused"]


def test_baselines_by_path_and_by_commit_extracted_once(tmp_path):
    venv = tmp_path / "env"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    assert resolve_baseline(str(venv)).python == str(venv.resolve() / "bin" / "python")
    assert resolve_baseline(str(venv / "bin" / "python")).path is None
    with pytest.raises(ValueError, match="neither a virtual environment"):
        resolve_baseline(str(tmp_path))
    repo = fake(tmp_path / "repo", "old", 2.0)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "old"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    with pytest.raises(ValueError, match="neither an existing path nor a commit of the git repository"):
        resolve_baseline("no-such-ref", repo=repo, cache=tmp_path / "cache")
    inst = resolve_baseline(sha[:7], repo=repo, cache=tmp_path / "cache")
    src = tmp_path / "cache" / sha / "src"
    assert inst.path == str(src) and (src / "welavae" / "cli.py").exists()
    assert (tmp_path / "cache" / sha / "ready").read_text().strip() == sha
    stamp = (src / "welavae" / "cli.py").stat().st_mtime_ns
    assert resolve_baseline("HEAD", repo=repo, cache=tmp_path / "cache").path == inst.path  # extracted once
    assert (src / "welavae" / "cli.py").stat().st_mtime_ns == stamp
    row = {"name": "r", "argv": ["--out", "{out}"], "seconds_from": "{out}/status.json:seconds"}
    assert run_ab([row], inst, inst, pairs=1, warmup=0)["rows"][0]["seconds"]["reference"] == [2.0]


def test_bench_baseline_runs_its_rows_against_a_reference_and_writes_the_pairs(tmp_path, capsys):
    # `welavae bench --baseline PATH`: the reference a fake tree, the current side this code (`--version`, no torch
    # work); the JSON holds every run, the pairs and the ratio's spread, and the table is printed.
    from welavae.perf.ab import TRAIN_ROWS, run_baseline

    ref = fake(tmp_path / "old", "old", 2.0)
    result = run_baseline(str(ref), pairs=2, rows=[{"name": "version", "argv": ["--version"]}],
                          json_path=tmp_path / "ab.json")
    assert json.loads((tmp_path / "ab.json").read_text()) == json.loads(json.dumps(result))
    (row,) = result["rows"]
    assert result["pairs"] == 2 and len(row["ratio"]["ratios"]) == 2 and row["ratio"]["median"] > 0
    assert [r["returncode"] for r in row["runs"]] == [0] * 6  # one warm-up each, then two pairs
    assert "version: median" in capsys.readouterr().out
    # The real rows: the quick MLP of the question, timed by the run's own clock; flags 0.2.0 knows but --arch.
    assert TRAIN_ROWS[0]["argv"] == ["train", "--model", "tcvae", "--variants", "1", "--shape", "disk", "--seeds",
                                     "0-7", "--out", "{out}", "--hidden", "64,32", "--epochs", "10", "--batch-size",
                                     "64", "--lr", "1e-3"]
    assert {r["seconds_from"] for r in TRAIN_ROWS} == {"{out}/status.json:seconds"}
