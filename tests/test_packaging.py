"""A real package: the wheel carries the catalog and the configs, installs nothing generic at the
top level, and an installed copy runs from any folder with its models in a per-user folder."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def tracked_files() -> list[str]:
    result = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [name for name in result.stdout.decode().split("\0") if name]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel pip builds from a copy of the tracked files (the checkout itself stays clean)."""
    src = tmp_path_factory.mktemp("src")
    for name in tracked_files():
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file():
            target.write_bytes((ROOT / name).read_bytes())
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
                   check=True, capture_output=True, timeout=600)
    (found,) = out.glob("livefusion-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                    str(wheel)], check=True, capture_output=True, timeout=600)
    return site


def run_installed(site: Path, home: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LIVEFUSION_MODELS"}
    env.update(PYTHONPATH=str(site), HOME=str(home), XDG_DATA_HOME=str(home / "data"))
    return subprocess.run([sys.executable, "-m", "livefusion", *argv], cwd=home, env=env,
                          capture_output=True, text=True, timeout=300)


def test_wheel_holds_the_catalog_and_configs_and_nothing_generic(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "livefusion/bundled/catalog/catalog.toml" in names
    for profile in ("default", "cpu", "quality", "low-latency"):
        assert f"livefusion/bundled/configs/{profile}.toml" in names
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top <= {"livefusion", "livefusion_ui"}, top
    assert "ui" not in top and "run_live.py" not in top
    assert not any(name.endswith(".onnx") for name in names)
    for module in ("livefusion/media/sources.py", "livefusion/models/store.py",
                   "livefusion/measure/benchmark.py", "livefusion/face/blend.py",
                   "livefusion_ui/main.py", "livefusion_ui/window.py"):
        assert module in names, module


def test_installed_window_package_imports_from_the_install(installed, tmp_path):
    result = subprocess.run([sys.executable, "-c", "import livefusion_ui.main, livefusion.cli; "
                             "print(livefusion_ui.main.__file__)"], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(installed),
                                 "QT_QPA_PLATFORM": "offscreen"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(installed))


def test_installed_copy_verifies_models_in_a_per_user_folder(installed, tmp_path):
    result = run_installed(installed, tmp_path, "--verify-models")
    report = result.stdout + result.stderr
    per_user = tmp_path / "data" / "LiveFusion" / "models"
    assert result.returncode == 1  # nothing downloaded yet: every model is missing
    assert f"{per_user}{os.sep}det_10g.onnx" in report
    assert str(installed) not in report
    assert "fix: livefusion --download-models" in report


@pytest.mark.shared
def test_installed_copy_runs_the_benchmark_from_another_folder(installed, tmp_path, shared_model,
                                                               shared_video):
    result = run_installed(installed, tmp_path, "--benchmark", "--input",
                           str(shared_video("dfl_Obama_speaking.mp4")), "--frames", "20",
                           "--model", f"detector={shared_model('det_500m.onnx')}")
    assert result.returncode == 0, result.stderr
    assert "throughput" in result.stdout + result.stderr
    assert "over 20 frames" in result.stdout + result.stderr
