#!/usr/bin/env bash
# Rotates the Slack signing secret or bot token in Vault
# (secret/coffeebuddy/slack), the runbook's Vault half
# (docs/runbooks/rotate-slack-secrets.md). The value is read from stdin,
# never from the command line (it would show in ps and shell history), and
# never printed. The other key at the path is kept.
#
#   rotate-slack-secrets.sh signing-secret   # paste Slack's regenerated signing secret
#   rotate-slack-secrets.sh bot-token        # paste the new xoxb- token
#   rotate-slack-secrets.sh status           # versions at the path (no values)
#   rotate-slack-secrets.sh rollback VERSION # make VERSION current again
#
# Needs the vault CLI logged in with policy coffeebuddy-secrets-operator
# (deploy/vault/operator/). Vault agent re-renders the files within 15 s
# (template-static-secret-render-interval on the Services) and the
# functions re-read them within a second, so nothing is restarted.
set -euo pipefail

path=${VAULT_SLACK_PATH:-secret/coffeebuddy/slack}

usage() {
  sed -n 's/^#   //p' "$0" >&2
  exit 2
}

log() { printf 'rotate-slack-secrets: %s\n' "$*" >&2; }

current_version() {
  # Metadata only: the values never leave Vault here.
  vault kv metadata get -format=json "$path" | sed -n 's/.*"current_version": \([0-9]*\).*/\1/p' | head -n 1
}

# read_secret PROMPT: one line from stdin, without echo on a terminal.
read_secret() {
  local value
  if [ -t 0 ]; then
    printf '%s: ' "$1" >&2
    IFS= read -r -s value
    printf '\n' >&2
  else
    IFS= read -r value || true
  fi
  # Surrounding blanks are a copy-paste slip, not part of a Slack secret.
  value=${value#"${value%%[![:space:]]*}"}
  value=${value%"${value##*[![:space:]]}"}
  printf '%s' "$value"
}

# write KEY VALUE: patch one key, keeping the other (read-then-write, which
# the operator policy's read and update allow).
# The first write (a new install) creates the path.
write() {
  local key=$1 value=$2 before
  before=$(current_version 2>/dev/null || true)
  if [ -z "$before" ]; then
    printf '%s' "$value" | vault kv put "$path" "$key=-" >/dev/null
  else
    printf '%s' "$value" | vault kv patch -method=rw "$path" "$key=-" >/dev/null
  fi
  log "wrote $key to $path: version ${before:-none} -> $(current_version)"
  log "roll back with: $0 rollback ${before:-<version>}"
}

watch_hint() {
  cat >&2 <<EOF
rotate-slack-secrets: within about 16 s every pod has it; watch:
  - slack-ingress logs: one "Slack signing secret changed" per pod (signing secret)
  - slack_ingress_requests_total{status="401"}: rises only until the pods have the new
    signing secret (Slack signs with it from the moment it is regenerated), then flat
  - slack_ingress_previous_secret_total: requests the grace window let through
  - slack_api_errors_total{error=~"invalid_auth|token_revoked"}: should stop rising (bot token)
EOF
}

case "${1:-}" in
  signing-secret)
    [ $# -eq 1 ] || usage
    v=$(read_secret "new Slack signing secret")
    # Slack's signing secrets are 32 hex digits.
    if ! [[ $v =~ ^[0-9a-f]{32}$ ]]; then
      log "that does not look like a Slack signing secret (32 hex digits); nothing written"
      exit 1
    fi
    write signing_secret "$v"
    watch_hint
    ;;
  bot-token)
    [ $# -eq 1 ] || usage
    v=$(read_secret "new Slack bot token")
    # xoxb- for a long-lived token, xoxe.xoxb- for an expiring one.
    if ! [[ $v =~ ^(xoxe\.)?xoxb-[0-9A-Za-z-]+$ ]]; then
      log "that does not look like a Slack bot token (xoxb-…); nothing written"
      exit 1
    fi
    write bot_token "$v"
    watch_hint
    ;;
  status)
    [ $# -eq 1 ] || usage
    vault kv metadata get "$path"
    ;;
  rollback)
    if [ $# -ne 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then
      usage
    fi
    vault kv rollback -version="$2" "$path" >/dev/null
    log "version $2 of $path is current again (as version $(current_version))"
    watch_hint
    ;;
  *)
    usage
    ;;
esac
