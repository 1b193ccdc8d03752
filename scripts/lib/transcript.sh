# The read-along transcript of a chapter script: step headers, commands
# printed the way the book prints them (`$ minik8s get svc`, then what it
# printed), and the one failure format every check ends in:
#   FAILED at step N (<what>): expected ..., got ...
#
# A shown command runs exactly as printed (through `bash -c`, with
# `minik8s` found on PATH), so what the reader sees is what was checked.
# Its output lands in OUT and its exit status in RC.

if [ -t 1 ]; then
  C_CMD=$'\e[1m' C_DIM=$'\e[2m' C_OK=$'\e[32m' C_BAD=$'\e[1;31m' C_OFF=$'\e[0m'
else
  C_CMD='' C_DIM='' C_OK='' C_BAD='' C_OFF=''
fi

STEP='setup'
STEP_STARTED=''
STEPS_PASSED=0
OUT=''
RC=0
# Seconds a shown command may take before it counts as hung.
CMD_TIMEOUT=${CMD_TIMEOUT:-90}

# Microseconds since the epoch (bash 5's EPOCHREALTIME, no fork).
now_us() {
  local t=${EPOCHREALTIME/[.,]/}
  echo $((10#$t))
}

# fmt_secs MICROSECONDS -> "8.3"
fmt_secs() {
  local us=$1
  printf '%d.%d' $((us / 1000000)) $(((us % 1000000) / 100000))
}

# step N "title": closes the previous step and opens the next one.
step() {
  step_done
  STEP=$1
  STEP_STARTED=$(now_us)
  printf '\n%s== Step %s. %s%s\n' "$C_CMD" "$1" "$2" "$C_OFF"
}

step_done() {
  [ -n "$STEP_STARTED" ] || return 0
  # A script may want to look around between steps (see cluster.sh).
  if declare -F on_step_done >/dev/null; then on_step_done; fi
  local took=$(($(now_us) - STEP_STARTED))
  printf '%s-- step %s passed (%s s)%s\n' "$C_OK" "$STEP" "$(fmt_secs "$took")" "$C_OFF"
  STEPS_PASSED=$((STEPS_PASSED + 1))
  STEP_STARTED=''
}

# note "text": the script's own remarks, marked so they are not mistaken
# for command output.
note() {
  printf '%s# %s%s\n' "$C_DIM" "$*" "$C_OFF"
}

# fail WHAT EXPECTED GOT: the single way a check ends the script.
fail() {
  local what=$1 expected=$2 got=$3
  {
    printf '\n%sFAILED at step %s (%s): expected %s, got' "$C_BAD" "$STEP" "$what" "$expected"
    if [[ $got == *$'\n'* ]]; then
      printf ':%s\n' "$C_OFF"
      printf '%s\n' "$got" | sed 's/^/    | /'
    else
      printf ' %s%s\n' "'$got'" "$C_OFF"
    fi
  } >&2
  STEP_STARTED=''
  exit 1
}

# shown CMD: print `$ CMD`, run it, keep and print its output.
shown() {
  printf '%s$ %s%s\n' "$C_CMD" "$1" "$C_OFF"
  run_quiet "$1"
  [ -z "$OUT" ] || printf '%s\n' "$OUT"
  trace_took
}

# shown_stdin CMD INPUT: like shown, with INPUT on the command's stdin
# (the temporary Pod's shell reads its commands from there).
shown_stdin() {
  printf '%s$ %s%s\n' "$C_CMD" "$1" "$C_OFF"
  run_quiet "$1" "$2"
  [ -z "$OUT" ] || printf '%s\n' "$OUT"
  trace_took
}

# With TRACE=1, how long the last shown command took.
trace_took() {
  [ -z "${TRACE:-}" ] || note "took $(fmt_secs "$CMD_TOOK") s"
}

# run_quiet CMD [INPUT]: run without printing (for waits and probes).
run_quiet() {
  local input=${2-} t0
  t0=$(now_us)
  if OUT=$(timeout -k 5 "$CMD_TIMEOUT" bash -c "$1" 2>&1 <<<"$input"); then
    RC=0
  else
    RC=$?
  fi
  CMD_TOOK=$(($(now_us) - t0))
  if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
    fail "$1" "it to finish within ${CMD_TIMEOUT}s" "no end (killed after ${CMD_TIMEOUT}s); output so far:"$'\n'"$OUT"
  fi
}

# expect_rc N WHAT: the last command's exit status.
expect_rc() {
  [ "$RC" -eq "$1" ] || fail "$2" "exit status $1" "exit status $RC with output:"$'\n'"$OUT"
}
