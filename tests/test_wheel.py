"""The built-in presets ship in the wheel: build it from a copy of the source tree, install it
into a fresh virtual environment (no network, no index), and load every preset from there."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = {".git", "build", "dist", "runs", "demo-output", "bench-results", ".pytest_cache"}


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(
        ROOT,
        source,
        symlinks=True,
        ignore=lambda folder, names: [
            n for n in names if n in SKIP or n.endswith(".egg-info") or n == "__pycache__"
        ],
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(work / "dist"),
            str(source),
        ],
        check=True,
    )
    (wheel,) = (work / "dist").glob("keras_mimo-*.whl")
    venv = work / "venv"
    # system site packages give keras and the backends offline; keras_mimo itself comes from
    # the wheel, which the venv's own site-packages put first on the path
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
    )
    return venv, work


def test_every_builtin_preset_loads_from_the_installed_wheel(wheel_venv):
    venv, work = wheel_venv
    script = textwrap.dedent(
        """
        import json, numpy as np, keras_mimo
        from keras_mimo.presets.bundled import load_bundled
        from keras_mimo.presets.registry import zoo_root
        result = {"file": keras_mimo.__file__, "zoo": str(zoo_root()), "presets": {}}
        for name in keras_mimo.list_presets():
            model = keras_mimo.from_preset(name, compile=False)
            metadata = keras_mimo.preset_metadata(name)
            x, y = load_bundled(metadata["dataset"], **metadata.get("data_options", {}))
            grid = getattr(model, "grid", None)  # MIMOFormer / Performer: "MxN"
            n = "x".join(map(str, grid)) if grid else str(model.superposition)
            accuracy = round(100 * float(np.mean(model.predict(x, verbose=0).argmax(-1) == y)), 2)
            result["presets"][name] = [accuracy, metadata["accuracy_bundled"][n]]
        print(json.dumps(result))
        """
    )
    env = dict(os.environ, PYTHONPATH="")
    completed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script],
        cwd=work,  # not the source tree: nothing can come from the checkout
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    import json

    result = json.loads(completed.stdout.strip().splitlines()[-1])
    site = str(venv / "lib")
    assert result["file"].startswith(site) and result["zoo"].startswith(site)
    assert result["presets"], "the wheel lists no presets"
    for name, (measured, published) in result["presets"].items():
        assert abs(measured - published) <= 0.07, (name, measured, published)
    listing = subprocess.run(
        [str(venv / "bin" / "keras-mimo"), "presets"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert all(name in listing for name in result["presets"])
