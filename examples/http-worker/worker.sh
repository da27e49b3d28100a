#!/bin/sh
# A shoal worker in POSIX shell: curl speaks HTTP, jq reads and writes JSON.
#
# It registers, then loops: fetch jobs (a long poll), run each, and complete or fail it with
# the lease token the fetch returned. A background heartbeat keeps the lease of a long job.
#
#   SHOAL_URL=http://127.0.0.1:8080 SHOAL_QUEUE=default sh worker.sh
#
# Settings (environment): SHOAL_URL, SHOAL_NAMESPACE (default), SHOAL_QUEUE (default),
# SHOAL_WORKER_ID, SHOAL_WAIT (long-poll seconds, 10), SHOAL_BURST (1: stop once idle),
# SHOAL_TOKEN (an API token, when the server has one), SHOAL_CA (the CA file of an https:// URL).
set -eu

URL="${SHOAL_URL:-http://127.0.0.1:8080}"
NS="${SHOAL_NAMESPACE:-default}"
QUEUE="${SHOAL_QUEUE:-default}"
HOST=$(uname -n)
WORKER="${SHOAL_WORKER_ID:-sh-$HOST-$$}"
WAIT="${SHOAL_WAIT:-10}"
BURST="${SHOAL_BURST:-0}"
HEARTBEAT_EVERY=5

log() { printf '%s worker %s: %s\n' "$(date -u +%H:%M:%S)" "$WORKER" "$*" >&2; }

# api METHOD PATH [JSON]: prints the answer's body; fails (status 22) on an HTTP error.
api() {
  set -- "$1" "$2" "${3:-}"
  if [ -n "${SHOAL_TOKEN:-}" ]; then auth="Authorization: Bearer $SHOAL_TOKEN"; else auth="X-No-Auth: 1"; fi
  if [ -n "${SHOAL_CA:-}" ]; then tls="--cacert $SHOAL_CA"; else tls=""; fi
  if [ -n "$3" ]; then
    # shellcheck disable=SC2086 # $tls is empty or two words
    curl -sS --fail-with-body $tls -X "$1" -H "$auth" -H 'Content-Type: application/json' \
      --data "$3" "$URL/api/v1$2?namespace=$NS"
  else
    # shellcheck disable=SC2086
    curl -sS --fail-with-body $tls -X "$1" -H "$auth" "$URL/api/v1$2?namespace=$NS"
  fi
}

# The tasks this worker runs: read the payload (JSON) on stdin, print the result (JSON).
# A non-zero exit fails the attempt (2: unknown task, not worth a retry).
run_task() {
  case "$1" in
    echo) cat ;;
    add) jq -c '{sum: (.a + .b)}' ;;
    shout) jq -c '.text | ascii_upcase' ;;
    wc) jq -c '{words: (.text | split(" ") | map(select(length > 0)) | length)}' ;;
    boom) echo "boom: this task always fails" >&2; return 1 ;;
    *) echo "no handler for task $1" >&2; return 2 ;;
  esac
}

leave() {
  api DELETE "/workers/$WORKER" >/dev/null 2>&1 || true
  log "left"
}

register() {
  body=$(jq -cn --arg id "$WORKER" --arg q "$QUEUE" --arg host "$HOST" --argjson pid $$ \
    '{id: $id, queues: [$q], tasks: ["echo", "add", "shout", "wc", "boom"], language: "sh",
      host: $host, pid: $pid}')
  api POST /workers "$body" >/dev/null
  trap leave EXIT
  trap 'exit 130' INT TERM
  log "registered on queue $QUEUE at $URL"
}

# heartbeat JOB_ID TOKEN: renew the lease every few seconds until killed.
heartbeat() {
  body=$(jq -cn --arg w "$WORKER" --arg id "$1" --arg t "$2" \
    '{worker_id: $w, leases: [{job_id: $id, lease_token: $t}]}')
  while sleep "$HEARTBEAT_EVERY"; do api POST /pull/heartbeat "$body" >/dev/null || true; done
}

# process JOB_JSON: run one job and report its outcome.
process() {
  id=$(printf '%s' "$1" | jq -r .id)
  task=$(printf '%s' "$1" | jq -r .task)
  token=$(printf '%s' "$1" | jq -r .lease_token)
  err=$(mktemp)
  heartbeat "$id" "$token" >/dev/null 2>&1 &
  beating=$!
  status=0
  result=$(printf '%s' "$1" | jq -c .payload | run_task "$task" 2>"$err") || status=$?
  kill "$beating" 2>/dev/null || true
  wait "$beating" 2>/dev/null || true
  if [ "$status" -eq 0 ] && ! printf '%s' "${result:-null}" | jq . >/dev/null 2>&1; then
    result=$(jq -cn --arg text "$result" '$text')  # not JSON: send it as a JSON string
  fi
  if [ "$status" -eq 0 ]; then
    body=$(jq -cn --arg t "$token" --argjson r "${result:-null}" '{lease_token: $t, result: $r}')
    api POST "/jobs/$id/complete" "$body" >/dev/null && log "$task $id succeeded" ||
      log "$task $id: complete refused (lease lost?)"
  else
    if [ "$status" -eq 2 ]; then type=UnknownTask retryable=false; else type=ShellError retryable=true; fi
    body=$(jq -cn --arg t "$token" --arg type "$type" --rawfile msg "$err" \
      --argjson retryable "$retryable" --arg code "$status" \
      '{lease_token: $t, error: {type: $type, message: ($msg | rtrimstr("\n")),
        traceback: ("exit status " + $code), retryable: $retryable}}')
    api POST "/jobs/$id/fail" "$body" >/dev/null && log "$task $id failed ($type)" ||
      log "$task $id: fail refused (lease lost?)"
  fi
  rm -f "$err"
}

main() {
  register
  fetch=$(jq -cn --arg w "$WORKER" --arg q "$QUEUE" --argjson wait "$WAIT" \
    '{worker_id: $w, queues: [$q], limit: 1, wait: $wait}')
  while :; do
    jobs=$(api POST /pull/fetch "$fetch")
    if [ "$(printf '%s' "$jobs" | jq .drain)" = true ]; then
      log "asked to drain: done"
      return 0
    fi
    if [ "$(printf '%s' "$jobs" | jq '.jobs | length')" -eq 0 ]; then
      [ "$BURST" = 1 ] && { log "idle: done"; return 0; }
      continue
    fi
    printf '%s' "$jobs" | jq -c '.jobs[]' | while IFS= read -r job; do process "$job"; done
  done
}

main
