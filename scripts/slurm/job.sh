#!/bin/bash
# The body of every job of a study: job.sh features|participant|group. Submitted by submit.sh, which exports
# the study's variables (study.env) and STUDY_LIST, the participant list (one label per line).
set -euo pipefail
stage=$1
read -r -a models <<< "$MODELS"
read -r -a options <<< "${OPTIONS:-}"
cpus=${SLURM_CPUS_PER_TASK:-1}

app() {
    if [ -n "${IMAGE:-}" ]; then
        local binds=(-B "$BIDS_DIR:$BIDS_DIR:ro" -B "$OUT_DIR" -B "$FEATURE_CACHE" -B "$WORK_DIR")
        [ -n "${HF_CACHE:-}" ] && binds+=(-B "$HF_CACHE:/opt/huggingface")
        local gpu=()
        [ -n "${CUDA_VISIBLE_DEVICES:-}" ] && gpu=(--nv)
        "${SINGULARITY:-singularity}" exec --cleanenv "${gpu[@]}" "${binds[@]}" "$IMAGE" bids_encoding "$@"
    else
        bids_encoding "$@"
    fi
}

common=(--feature-cache "$FEATURE_CACHE" --work-dir "$WORK_DIR" --nprocs "$cpus" --skip-reports "${options[@]}")
case $stage in
plan)  # on the login node, before submitting: nothing computed
    read -r -a participants <<< "$(tr '\n' ' ' < "$STUDY_LIST")"
    app "$BIDS_DIR" "$OUT_DIR" participant --plan --models "${models[@]}" --participant-label "${participants[@]}" \
        "${common[@]}" ;;
features)  # one model per array task, every participant's stimuli
    model=${models[$SLURM_ARRAY_TASK_ID]}
    read -r -a participants <<< "$(tr '\n' ' ' < "$STUDY_LIST")"
    app "$BIDS_DIR" "$OUT_DIR" participant --features-only --models "$model" \
        --participant-label "${participants[@]}" "${common[@]}" ;;
participant)  # one participant per array task (line SLURM_ARRAY_TASK_ID of the list)
    label=$(sed -n "${SLURM_ARRAY_TASK_ID}p" "$STUDY_LIST")
    memory=${SLURM_MEM_PER_NODE:-}
    ridge=()
    [ -n "$memory" ] && ridge=(--mem "$((memory / 2))MB")  # half the job's memory for the ridge's blocks
    app "$BIDS_DIR" "$OUT_DIR" participant --participant-label "$label" --models "${models[@]}" \
        "${ridge[@]}" "${common[@]}" ;;
group)
    app "$BIDS_DIR" "$OUT_DIR" group --work-dir "$WORK_DIR" --nprocs "$cpus" "${options[@]}"
    app "$BIDS_DIR" "$OUT_DIR" participant --reports-only --models "${models[@]}" --work-dir "$WORK_DIR" \
        "${options[@]}" ;;
*) echo "job.sh: unknown stage '$stage' (features, participant, group)" >&2; exit 64 ;;
esac
