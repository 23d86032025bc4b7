"""The installs of the preflight (issue 30): a stamp makes a cycle whose
requirements have not changed install nothing; uv installs when it is there,
pip when it is not, with the same messages. Real git, real pip and uv, a
real flow run; the packages are local wheels (no package index)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from git_server import Repo
from harness import VENV_BIN, VENV_PYTHON
from test_preflight import deploy_from_code_dir, make_wheel

# An idle tick runs no preflight; a drain cycle is never idle.
DRAIN = {"PREFECT_CYCLE_DRAIN": "true"}
PLAIN_PATH = "/usr/local/bin:/usr/bin:/bin"
STAMP = ".prefect-cycle-requirements.stamp"

FLOW = '''
from prefect import flow


@flow(name="{flow}")
def uses_pkg(marker: str):
    import {pkg}
    with open(marker, "w") as f:
        f.write({pkg}.MARK)
'''


def uv_binary() -> Path:
    """uv from scripts/requirements-dev.txt (the suite's venv), or PC_E2E_UV."""
    found = os.environ.get("PC_E2E_UV") or shutil.which("uv", path=str(VENV_BIN))
    if not found:
        pytest.fail("uv not found: run scripts/setup.sh (scripts/requirements-dev.txt has uv) "
                    "or set PC_E2E_UV to a uv binary (pip install uv)")
    return Path(found)


def overlay_venv(dest: Path) -> Path:
    """A venv of its own that also sees the suite's packages (Prefect, pip)
    through a .pth file: the installs land in it, never in the shared venv.
    Its python."""
    subprocess.run([str(VENV_PYTHON), "-m", "venv", "--without-pip", str(dest)], check=True)
    purelib = lambda py: subprocess.run(  # noqa: E731
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip()
    python = dest / "bin" / "python"
    Path(purelib(python), "suite.pth").write_text(purelib(VENV_PYTHON) + "\n")
    return python


def installer_lines(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if "source=pip" in ln or "source=uv" in ln]


@pytest.fixture
def setup(prefect, pool, tmp_path):
    root = tmp_path / "git"
    root.mkdir()
    repo = Repo(root, "code")
    pkg = f"pc_e2e_stamp_{uuid.uuid4().hex[:8]}"
    wheel = make_wheel(repo.work / "wheels", pkg)
    flow_name = f"uses-{pkg}"
    repo.commit({"flows/app.py": FLOW.format(flow=flow_name, pkg=pkg),
                 "requirements.txt": f"--no-index\n./wheels/{wheel.name}\n"})
    python = overlay_venv(tmp_path / "venv")
    deployment = deploy_from_code_dir(prefect, pool, "flows/app.py:uses_pkg", flow_name)
    env = {"PREFECT_WORKER_REPOSITORY": repo.file_url,
           "PREFECT_WORKER_CODE_DIR": str(tmp_path / "code"),
           "PREFECT_WORKER_PYTHON": str(python)}
    return repo, python, deployment, env


def test_installs_once_then_the_stamp_skips_until_the_file_changes(
        prefect, pool, cycle, tmp_path, setup):
    repo, python, deployment, env = setup
    env = env | {"PREFECT_CYCLE_INSTALLER": "pip"}
    stamp = python.parent.parent / STAMP
    marker = tmp_path / "marker.txt"
    [run] = prefect.schedule_runs(deployment, 1, {"marker": str(marker)})

    first = cycle.run(pool, env)
    assert first.returncode == 0, first
    assert prefect.state_type(run) == "COMPLETED", first
    assert marker.read_text() == "installed-from-requirements"
    assert "Successfully installed" in first.output
    assert stamp.exists()
    assert first.summary["preflight_ms"]["install"] > 0

    again = cycle.run(pool, env | DRAIN)
    assert again.returncode == 0, again
    assert installer_lines(again.output) == [], again
    assert (f"requirements from {tmp_path / 'code' / 'requirements.txt'} already installed "
            f"({stamp} matches): install skipped") in again.output

    repo.commit({"requirements.txt": repo.work.joinpath("requirements.txt").read_text()
                 + "# changed\n"})
    changed = cycle.run(pool, env | DRAIN)
    assert changed.returncode == 0, changed
    assert "installing requirements from" in changed.output
    assert installer_lines(changed.output), changed
    assert stamp.exists()

    repo.commit({"requirements.txt": "--no-index\nno-such-package-pc-e2e==1.0\n"})
    failed = cycle.run(pool, env | DRAIN)
    assert failed.returncode == 4, failed
    assert not stamp.exists()  # never trusted after a failed install


def test_uv_installs_and_without_it_pip_says_the_same(prefect, pool, cycle, tmp_path, setup):
    repo, python, deployment, env = setup
    (python.parent / "uv").symlink_to(uv_binary())

    with_uv = cycle.run(pool, env | DRAIN)
    assert with_uv.returncode == 0, with_uv
    assert installer_lines(with_uv.output), with_uv
    assert all("source=uv" in ln for ln in installer_lines(with_uv.output)), with_uv
    assert f"{python.parent / 'uv'} pip install --python {python}" in with_uv.output
    assert (python.parent.parent / STAMP).exists()

    repo.commit({"requirements.txt": "--no-index\nno-such-package-pc-e2e==1.0\n"})
    uv_failed = cycle.run(pool, env | DRAIN)
    (python.parent / "uv").unlink()
    forced = cycle.run(pool, env | DRAIN | {"PREFECT_CYCLE_INSTALLER": "uv", "PATH": PLAIN_PATH})
    pip_failed = cycle.run(pool, env | DRAIN | {"PATH": PLAIN_PATH})

    for result in (uv_failed, pip_failed):
        assert result.returncode == 4, result
        assert result.summary["message"].startswith(
            f"installing requirements from {tmp_path / 'code' / 'requirements.txt'} failed ("), result
        assert "no-such-package-pc-e2e" in result.summary["message"], result
        assert result.summary["message"].endswith(
            "or set PREFECT_WORKER_INSTALL_REQUIREMENTS=false (--no-install-requirements)"), result
    assert "source=uv" in uv_failed.output and "source=pip" not in uv_failed.output
    assert "source=pip" in pip_failed.output and "source=uv" not in pip_failed.output
    assert forced.returncode == 4, forced
    assert forced.summary["message"].startswith(
        f'PREFECT_CYCLE_INSTALLER is "uv" but no uv was found beside {python} or on PATH'), forced


def test_cache_dir_holds_the_git_mirror_and_the_installer_cache(
        prefect, pool, cycle, tmp_path, setup):
    repo, python, deployment, env = setup
    (python.parent / "uv").symlink_to(uv_binary())
    cache = tmp_path / "volume" / "cache"
    env = env | DRAIN | {"PREFECT_CYCLE_CACHE_DIR": str(cache)}

    first = cycle.run(pool, env)
    assert first.returncode == 0, first
    [mirror] = (cache / "git").iterdir()
    assert subprocess.run(["git", "--git-dir", str(mirror), "rev-parse", "refs/heads/main"],
                          capture_output=True, text=True).stdout.strip() == \
        subprocess.run(["git", "--git-dir", str(repo.bare), "rev-parse", "main"],
                       capture_output=True, text=True).stdout.strip()
    assert any((cache / "uv").iterdir())  # uv's cache, not the container's
    code = Path(env["PREFECT_WORKER_CODE_DIR"])
    assert subprocess.run(["git", "-C", str(code), "remote", "get-url", "origin"],
                          capture_output=True, text=True).stdout.strip() == repo.file_url

    # A new container: a new code directory, the same volume. A new commit is
    # fetched into the mirror, the checkout made from it.
    newer = repo.commit({"note.txt": "second\n"})
    fresh = cycle.run(pool, env | {"PREFECT_WORKER_CODE_DIR": str(tmp_path / "code2")})
    assert fresh.returncode == 0, fresh
    assert f"cloned {tmp_path / 'code2'} to main at {newer}" in fresh.output
    assert [p.name for p in (cache / "git").iterdir()] == [mirror.name]

    # A cache that cannot be written is left out with a warning.
    blocked = tmp_path / "file-in-the-way"
    blocked.write_text("")
    warned = cycle.run(pool, env | {"PREFECT_CYCLE_CACHE_DIR": str(blocked / "cache")})
    assert warned.returncode == 0, warned
    assert "PREFECT_CYCLE_CACHE_DIR: cannot create" in warned.output
