"""The wheel and sdist a user builds: the licence inside, the metadata an index shows, and no CI
or local environments in the source distribution."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

# The dev extra brings both; the oldest-versions venv (no dev extra) skips this file.
pytest.importorskip("build")
pytest.importorskip("hatchling")

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_and_sdist_carry_the_licence_and_leave_ci_out(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    (sdist,) = tmp_path.glob("*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Author"]
    classifiers = metadata.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.10" in classifiers
    with tarfile.open(sdist) as archive:
        members = [m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name]
    assert "LICENSE" in members
    assert not [m for m in members if m.startswith((".ci", ".venv"))], members
    assert "src/llm_otel/py.typed" in members
