"""scripts/gpu_smoke.py: its CPU-quick variant runs every section and writes its files."""
import pytest


@pytest.mark.slow
def test_gpu_smoke_script_runs_on_the_cpu_and_writes_its_files(tmp_path):
    # The CPU-quick variant of scripts/gpu_smoke.py (minutes on a shared CPU): every section's file and the summary.
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sections = "gradcheck,precision,bit_identity,resume,host_waits"
    p = subprocess.run([sys.executable, str(root / "scripts" / "gpu_smoke.py"), "--device", "cpu", "--quick",
                        "--out", str(tmp_path), "--only", sections], capture_output=True, text=True, timeout=1500)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert p.returncode == 0, p.stdout + p.stderr
    assert {k: v["status"] for k, v in summary["sections"].items()} == {s: "ok" for s in sections.split(",")}
    identity = json.loads((tmp_path / "bit_identity.json").read_text())["result"]
    assert identity["mlp"] == {"weights_identical": True, "history_identical": True}
    assert json.loads((tmp_path / "resume.json").read_text())["result"]["weights_identical"] is True
    assert (tmp_path / "summary.md").read_text().startswith("# welavae GPU smoke test on cpu")


@pytest.mark.slow
def test_gpu_smoke_layouts_section_times_both_layouts_on_the_cpu(tmp_path):
    # The layouts section in its CPU-quick form: time_layouts on gray and colour, and the conv_gray bench rows with
    # each layout forced; every welavae row with S > 1 ran in the layout it was given.
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    p = subprocess.run([sys.executable, str(root / "scripts" / "gpu_smoke.py"), "--device", "cpu", "--quick",
                        "--out", str(tmp_path), "--only", "layouts"], capture_output=True, text=True, timeout=1500)
    assert p.returncode == 0, p.stdout + p.stderr
    result = json.loads((tmp_path / "layouts.json").read_text())["result"]
    assert [(t["channels"], t["seeds"]) for t in result["time_layouts"]] == [(1, 2), (3, 2)]
    assert all(t["faster"] in ("grouped", "per-seed") and len(t["seconds"]["per-seed"]) == 1
               for t in result["time_layouts"])
    for layout in ("grouped", "per-seed"):
        rows = result["bench"][layout]
        assert [(r["impl"], r["seeds"], r["seed_layout"]) for r in rows] == [
            ("naive", 1, None), ("welavae", 1, None), ("welavae", 2, layout)]
        assert (tmp_path / f"bench_layout_{layout}.json").exists()
