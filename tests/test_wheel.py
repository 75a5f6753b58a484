"""A real install: build the wheel, install it (not editable) into a fresh virtual environment and use the installed
commands from a directory outside the repository.

The fresh environment gets no copy of torch and the other dependencies: a ``.pth`` file puts the test
interpreter's site-packages on its ``sys.path``, after its own. Only that directory goes on the path, so the
``.pth`` files inside it (among them the editable install of this repository) are not read, and ``smmix_hf``
can only come from the wheel.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "smmix_hf")


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """Build the wheel from a copy of the sources, install it into a new venv; return its paths and environment."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy, so that building leaves no build/ or egg-info in the working tree
    source.mkdir()
    for name in SOURCES:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        else:
            shutil.copy2(REPO_ROOT / name, source / name)
    offline = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = [sys.executable, "-m", "pip"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(root / "dist"), str(source)], root,
        offline)  # fmt: skip
    (wheel,) = (root / "dist").glob("smmix_hf-*.whl")

    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root, offline)
    python = venv / "bin" / "python"
    venv_site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], root,
                         offline).stdout.strip())  # fmt: skip
    dev_site = [path for path in [sysconfig.get_path("purelib"), *site.getsitepackages()] if Path(path).is_dir()]
    (venv_site / "dev_dependencies.pth").write_text("\n".join(dict.fromkeys(dev_site)) + "\n")
    run([*pip, "--python", str(python), "install", "--no-deps", str(wheel)], root, offline)

    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "SMMIX_DEBUG", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    outside = root / "elsewhere"
    outside.mkdir()
    return {"wheel": wheel, "venv": venv, "python": str(python), "site": venv_site, "env": env, "cwd": outside}


def test_the_wheel_ships_the_recipes_and_the_command(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    recipes = {Path(name).stem for name in names if name.startswith("smmix_hf/recipes/") and name.endswith(".yaml")}
    assert recipes == {path.stem for path in (REPO_ROOT / "smmix_hf" / "recipes").glob("*.yaml")}
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    assert "smmix-train = smmix_hf.cli.train:cli" in zipfile.ZipFile(installed["wheel"]).read(entry_points).decode()
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    requirements = [
        line.removeprefix("Requires-Dist: ")
        for line in zipfile.ZipFile(installed["wheel"]).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist: ")
    ]
    assert "torch>=2.4" in requirements and any(line.startswith("pyarrow") for line in requirements)
    assert any(line.startswith("torchdata") and 'extra == "stream"' in line for line in requirements)


def test_the_wheel_compiles_the_region_decoder(installed):
    """The wheel is built from sources without the checkout's compiled extension, and carries its own, which the
    installed package loads (where libjpeg's headers are installed, as in CI)."""
    if not Path("/usr/include/jpeglib.h").exists():
        pytest.skip("no libjpeg headers here: the extension is optional and was left out")
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    assert any(name.startswith("smmix_hf/data/_jpeg_region.") and name.endswith(".so") for name in names), names
    code = "from smmix_hf.data import crop_decode, _jpeg_region; print(crop_decode.region_decoder_available())"
    assert run([installed["python"], "-c", code], installed["cwd"], installed["env"]).stdout.strip() == "True"


def test_installed_package_comes_from_the_wheel(installed):
    code = "import smmix_hf, smmix_hf.recipes, sys; print(smmix_hf.__file__); print(smmix_hf.recipes.RECIPES_DIR)"
    result = run([installed["python"], "-c", code], installed["cwd"], installed["env"])
    package, recipes = result.stdout.split()
    assert Path(package).is_relative_to(installed["site"]), package
    assert Path(recipes) == installed["site"] / "smmix_hf" / "recipes"
    assert str(REPO_ROOT) not in result.stdout


def test_smmix_train_runs_the_packaged_demo_outside_the_repository(installed):
    output_dir = installed["cwd"] / "run"
    command = ["smmix-train", "--config", "demo", "--max_steps", "5", "--output_dir", str(output_dir),
               "--disable_tqdm", "true"]  # fmt: skip
    assert shutil.which("smmix-train", path=installed["env"]["PATH"]) == str(installed["venv"] / "bin" / "smmix-train")
    result = run(command, installed["cwd"], installed["env"])
    assert "top-1 = " in result.stdout
    assert {"model.safetensors", "config.json", "preprocessor_config.json", "README.md"} <= {
        path.name for path in output_dir.iterdir()
    }


def test_python_m_entry_points_and_usage_errors(installed):
    env, cwd, python = installed["env"], installed["cwd"], installed["python"]
    help_text = run([python, "-m", "smmix_hf", "--help"], cwd, env).stdout
    assert help_text.startswith("usage: smmix-train ") and "deit_small_smmix" in help_text
    assert "usage:" in run([python, "-m", "smmix_hf.analyze", "--help"], cwd, env).stdout
    assert "demo " in run([python, "-m", "smmix_hf.recipes"], cwd, env).stdout
    bad = subprocess.run(["smmix-train", "--config", "dmo"], cwd=cwd, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("smmix-train: error: config 'dmo' is neither a file")
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_the_core_runs_without_the_stream_extra(installed):
    """torchdata (the [stream] extra) made unimportable: training works; --streaming names the extra."""
    without_torchdata = (
        "import sys; sys.modules['torchdata'] = None; sys.argv[0] = 'smmix-train'; "
        "from smmix_hf.cli.train import cli; cli()"
    )
    env, cwd, python = installed["env"], installed["cwd"], installed["python"]
    base = [python, "-c", without_torchdata, "--config", "demo", "--max_steps", "1", "--max_eval_samples", "8"]
    run([*base, "--output_dir", str(cwd / "plain")], cwd, env)
    streamed = subprocess.run([*base, "--streaming", "true", "--output_dir", str(cwd / "stream")], cwd=cwd, env=env,
                              capture_output=True, text=True)  # fmt: skip
    assert streamed.returncode == 2, streamed.stderr[-3000:]
    assert streamed.stderr.splitlines()[-1] == (
        "smmix-train: error: --streaming needs torchdata (its StatefulDataLoader keeps the stream position in every "
        "checkpoint); install it with `pip install 'smmix_hf[stream]'`."
    )
