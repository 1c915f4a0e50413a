#!/bin/bash
# Submit a study to Slurm as three stages: the features once per model (GPU array), then one job per
# participant (array; they start when every feature job has succeeded), then the group level and the
# reports. usage: scripts/slurm/submit.sh STUDY.env [--plan-only]   (docs/hpc.md)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] && [ -f "$1" ] || { echo "usage: $0 STUDY.env [--plan-only]" >&2; exit 64; }
set -a; . "$1"; set +a
mkdir -p "$OUT_DIR/logs/slurm" "$FEATURE_CACHE" "$WORK_DIR"
export STUDY_LIST=$OUT_DIR/logs/slurm/participants.txt
if [ -n "${PARTICIPANTS:-}" ]; then
    tr ' ' '\n' <<< "$PARTICIPANTS" | sed '/^$/d; s/^sub-//' > "$STUDY_LIST"
else
    find "$BIDS_DIR" -maxdepth 1 -name 'sub-*' -type d -printf '%f\n' | sed 's/^sub-//' | sort > "$STUDY_LIST"
fi
n=$(wc -l < "$STUDY_LIST")
read -r -a models <<< "$MODELS"
echo "study: $n participant(s), ${#models[@]} model(s); outputs in $OUT_DIR"
# the plan (nothing computed): the work, the memory of a job and its time, to check the resources above
bash "$here/job.sh" plan || echo "submit.sh: the plan failed (see above): check the study file" >&2
[ "${2:-}" = "--plan-only" ] && exit 0
logs=(--output "$OUT_DIR/logs/slurm/%x-%A_%a.out")
# shellcheck disable=SC2086  # the *_SBATCH variables hold several options
features=$(sbatch --parsable --job-name=bids_encoding-features --array=0-$((${#models[@]} - 1)) "${logs[@]}" \
    --export=ALL $FEATURES_SBATCH "$here/job.sh" features)
# shellcheck disable=SC2086
participants=$(sbatch --parsable --job-name=bids_encoding-participant --array=1-"$n"%"${MAX_PARALLEL:-20}" \
    --dependency=afterok:"$features" --kill-on-invalid-dep=yes "${logs[@]}" --export=ALL $PARTICIPANT_SBATCH \
    "$here/job.sh" participant)
# shellcheck disable=SC2086
group=$(sbatch --parsable --job-name=bids_encoding-group --dependency=afterok:"$participants" \
    --kill-on-invalid-dep=yes --output "$OUT_DIR/logs/slurm/%x-%j.out" --export=ALL $GROUP_SBATCH \
    "$here/job.sh" group)
echo "submitted: features $features, participants $participants, group $group (logs in $OUT_DIR/logs/slurm)"
