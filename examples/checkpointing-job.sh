#!/bin/sh
# A training stand-in that follows wanka's job contract: it computes something deterministic step by step,
# checkpoints to $WANKA_CHECKPOINT_DIR (every $EVERY steps, and at once on the "checkpoint now" signal,
# SIGUSR1), resumes from its checkpoint after a restart, and reports progress to $WANKA_PROGRESS_FILE.
# Every rank computes the same sequence, so any run, disturbed or not, must end with the same result.
# With WRITE_S > 0 checkpoints are asynchronous, as large training jobs write them: the state is copied and a
# background writer takes WRITE_S seconds to make it durable while training goes on; the checkpoint is reported
# only once durable, and a new one waits for the write before it.
#   wanka submit -N 2 --gpus-per-node=2 examples/checkpointing-job.sh
STEPS=${STEPS:-60}
EVERY=${EVERY:-10}
DT=${DT:-0.1}
WRITE_S=${WRITE_S:-0}
ckpt="${WANKA_CHECKPOINT_DIR:?not run by wanka}/rank-${RANK:-0}"
progress="${WANKA_PROGRESS_FILE:-/dev/null}"
step=0
acc=1
if [ -f "$ckpt" ]; then
  read -r step acc < "$ckpt"
fi
echo "rank $RANK: run $WANKA_RESTART_COUNT starts at step $step"
now=0
trap 'now=1' USR1
# With CHECKPOINT_ON_TERM=1, SIGTERM (a preemption, a reclaim of borrowed capacity, a cancel) checkpoints the last
# finished step before exiting, as Slurm-style jobs do; without it a stop loses the work since the last checkpoint,
# as a crash would.
if [ "${CHECKPOINT_ON_TERM:-0}" = 1 ]; then
  trap 'write "$step" "$acc"; echo "rank $RANK: stopped at step $step"; exit 143' TERM
fi
write() {
  echo "$1 $2" > "$ckpt.tmp.$1" && mv "$ckpt.tmp.$1" "$ckpt"
  echo "{\"checkpoint\": $1}" >> "$progress"
}
writer=
save() {
  if [ "$WRITE_S" = 0 ]; then
    write "$step" "$acc"
    return
  fi
  while [ -n "$writer" ] && kill -0 "$writer" 2>/dev/null; do wait "$writer"; done
  # The writer ignores the "checkpoint now" signal (a subshell keeps the signals ignored when it starts).
  trap '' USR1
  (sleep "$WRITE_S"; write "$1" "$2") &
  writer=$!
  trap 'now=1' USR1
}
while [ "$step" -lt "$STEPS" ]; do
  step=$((step + 1))
  acc=$(((acc * 31 + step) % 1000000007))
  sleep "$DT"
  echo "{\"step\": $step, \"step_time_s\": $DT}" >> "$progress"
  if [ $((step % EVERY)) -eq 0 ] || [ "$now" = 1 ]; then
    save "$step" "$acc"
    now=0
  fi
done
wait
echo "rank $RANK: result $acc after $STEPS steps"
