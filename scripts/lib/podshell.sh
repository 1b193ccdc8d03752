# The chapter's temporary debug Pod:
#   minik8s run tmp --rm -it --image=curlimages/curl -- sh
# driven without a terminal. The commands go to the Pod's shell on stdin,
# the way a reader types them, each echoed after a `/ $ ` prompt so the
# transcript reads like the book. Commands wait on stdin, so nothing the
# Pod prints is lost before the client has attached.

# pod_session CMD...: run CMD... in one temporary Pod, then `exit`.
# Afterwards OUT is the whole session and session_part K the output of
# the K-th command.
pod_session() {
  local script='' c q
  for c in "$@"; do
    q=${c//\'/\'\\\'\'}
    # stderr joins stdout inside the Pod, so the two keep their order.
    script+="echo '/ \$ $q'"$'\n'"{ $c"$'\n'"} 2>&1"$'\n'
  done
  script+="echo '/ \$ exit'"$'\n'"exit"$'\n'
  shown_stdin "minik8s run tmp --rm -i --image=curlimages/curl -- sh" "$script"
  expect_rc 0 "temporary Pod session"
  expect_some_line 'temporary Pod session ends' 'pod "tmp" deleted'
  SESSION_CMDS=("$@")
  local session=$OUT
  run_quiet "minik8s get pod tmp"
  expect_text "the temporary Pod is gone after exit (--rm)" 'Error from server (NotFound): pods "tmp" not found'
  OUT=$session
}

# session_part K: the lines the K-th command (from 1) printed.
session_part() {
  awk -v k="$1" '
    /^\/ \$ / { n++; next }
    /^pod "tmp" deleted$/ { exit }
    n == k { print }
  ' <<<"$OUT"
}

# session_part_dns K: like session_part, without the blank lines and the
# note bind's nslookup prints for each answer that does not offer
# recursion (the cluster DNS answers cluster.local itself and, started
# with --dns-upstream none, forwards nothing).
session_part_dns() {
  session_part "$1" | sed -e '/^;; Got recursion not available from /d' -e '/^[[:space:]]*$/d'
}
