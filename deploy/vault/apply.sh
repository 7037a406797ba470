#!/usr/bin/env bash
# Applies CoffeeBuddy's Vault configuration (deploy/vault/README.md), in
# order: the audit device first (so everything after it is audited), the
# KV v2 engine, the policies, Kubernetes auth and one role per function, the
# database secrets engine and its static roles. Run it as a Vault
# administrator with the vault CLI (VAULT_ADDR, VAULT_TOKEN or a login):
#
#   deploy/vault/apply.sh            # apply, idempotently
#   deploy/vault/apply.sh --dry-run  # print the vault commands only
#
# Before the first run, deploy/postgres/roles.sql must have created the
# database roles, and an administrator must have given coffeebuddy_vault a
# one-off password (ALTER ROLE coffeebuddy_vault PASSWORD '…'); pass it on
# stdin or in VAULT_DB_INITIAL_PASSWORD. Vault then rotates it at once
# (rotate-root), so nobody knows it afterwards. The database connection is
# only written when it does not exist yet: rewriting it would put back that
# one-off password.
#
# Environment (all optional):
#   VAULT_KV_MOUNT (secret)            the KV v2 mount the Services read
#   VAULT_DB_MOUNT (database)          the database secrets engine mount
#   VAULT_K8S_MOUNT (kubernetes)       the Kubernetes auth mount
#   VAULT_DB_CONNECTION_URL            overrides database/config.json's URL
#   VAULT_K8S_HOST                     overrides auth/kubernetes.json's host
#   COFFEEBUDDY_PGBOUNCER (false)      true when the chart runs PgBouncer: then
#                                      the DBA has created coffeebuddy_pgbouncer,
#                                      and its static role is written (Vault sets
#                                      a static role's password when it is
#                                      written, so the role must exist)
# (audit/file.json names the audit log's path: edit it if yours differs.)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

dry_run=false
case "${1:-}" in
  --dry-run) dry_run=true ;;
  "") ;;
  *) echo "usage: $0 [--dry-run]" >&2; exit 2 ;;
esac

kv_mount=${VAULT_KV_MOUNT:-secret}
db_mount=${VAULT_DB_MOUNT:-database}
k8s_mount=${VAULT_K8S_MOUNT:-kubernetes}

# The Services read secret/data/coffeebuddy/… and database/static-creds/…:
# other mounts would need other annotations and policies.
if [ "$kv_mount" != secret ] || [ "$db_mount" != database ]; then
  echo "apply.sh: the Services' annotations name the mounts secret/ and database/; change them there first" >&2
  exit 2
fi

log() { printf 'apply.sh: %s\n' "$*" >&2; }

# v runs a vault command, or prints it with --dry-run. Arguments never
# carry secrets: passwords go on stdin.
v() {
  if $dry_run; then
    printf 'vault'
    printf ' %q' "$@"
    printf '\n'
    return 0
  fi
  vault "$@"
}

# enabled LIST_KIND PATH: whether "vault LIST_KIND list" shows PATH/.
enabled() {
  if $dry_run; then
    return 1
  fi
  vault "$1" list -format=json | grep -q "\"$2/\""
}

if ! $dry_run; then
  command -v vault >/dev/null || { echo "apply.sh: the vault CLI is not on PATH" >&2; exit 1; }
  vault token lookup >/dev/null || { echo "apply.sh: not logged in to Vault (VAULT_ADDR=${VAULT_ADDR:-unset})" >&2; exit 1; }
fi

# 1. Audit device: who read which secret, and when. Vault refuses requests
# it cannot audit, so watch the disk it writes to.
if enabled audit file; then
  log "audit device file/ already enabled"
else
  v write sys/audit/file @audit/file.json
fi

# 2. KV v2 for the Slack secrets and the audit API's cursor key.
if enabled secrets "$kv_mount"; then
  if ! vault read -format=json "sys/mounts/$kv_mount" | grep -q '"version": "2"'; then
    echo "apply.sh: $kv_mount/ is not KV version 2; the Services read $kv_mount/data/…" >&2
    exit 1
  fi
  log "secrets engine $kv_mount/ (KV v2) already enabled"
else
  v secrets enable -path="$kv_mount" -version=2 kv
fi

# 3. Policies: one per function (generated), and the operators' one.
for f in policies/*.hcl; do
  name=$(basename "$f" .hcl)
  v policy write "coffeebuddy-$name" "$f"
done
for f in operator/*.hcl; do
  v policy write "$(basename "$f" .hcl)" "$f"
done

# 4. Kubernetes auth: each function's ServiceAccount logs in to its role.
if enabled auth "$k8s_mount"; then
  log "auth method $k8s_mount/ already enabled"
else
  v auth enable -path="$k8s_mount" kubernetes
fi
k8s_args=()
[ -n "${VAULT_K8S_HOST:-}" ] && k8s_args+=("kubernetes_host=$VAULT_K8S_HOST")
v write "auth/$k8s_mount/config" @auth/kubernetes.json "${k8s_args[@]}"
for f in roles/*.json; do
  name=$(basename "$f" .json)
  v write "auth/$k8s_mount/role/coffeebuddy-$name" "@$f"
done

# 5. Database secrets engine: the connection (once), then the static roles,
# whose passwords Vault sets now and rotates every 90 days (2160h).
if enabled secrets "$db_mount"; then
  log "secrets engine $db_mount/ already enabled"
else
  v secrets enable -path="$db_mount" database
fi
db_args=()
[ -n "${VAULT_DB_CONNECTION_URL:-}" ] && db_args+=("connection_url=$VAULT_DB_CONNECTION_URL")
if ! $dry_run && vault read "$db_mount/config/coffeebuddy" >/dev/null 2>&1; then
  log "database connection $db_mount/config/coffeebuddy exists: left as it is (its password is Vault's)"
else
  if $dry_run; then
    v write "$db_mount/config/coffeebuddy" @database/config.json "${db_args[@]}" password=-
  elif [ -n "${VAULT_DB_INITIAL_PASSWORD:-}" ]; then
    printf '%s' "$VAULT_DB_INITIAL_PASSWORD" | v write "$db_mount/config/coffeebuddy" @database/config.json "${db_args[@]}" password=-
  else
    log "one-off password of coffeebuddy_vault (stdin):"
    v write "$db_mount/config/coffeebuddy" @database/config.json "${db_args[@]}" password=-
  fi
  v write -f "$db_mount/rotate-root/coffeebuddy"
fi
for f in database/static-roles/*.json; do
  name=$(basename "$f" .json)
  if [ "$name" = coffeebuddy-pgbouncer ] && [ "${COFFEEBUDDY_PGBOUNCER:-false}" != true ]; then
    log "static role $name skipped (COFFEEBUDDY_PGBOUNCER is not true: no PgBouncer)"
    continue
  fi
  v write "$db_mount/static-roles/$name" "@$f"
done

log "done. Next: the Slack secrets (rotate-slack-secrets.sh) and the audit API's cursor key, if not set yet:"
log "  vault kv put $kv_mount/coffeebuddy/audit-api cursor_key=\"\$(head -c 32 /dev/urandom | base64)\""
log "and Kong's secret for the decK sync (deploy/kong/README.md):"
log "  vault kv put $kv_mount/coffeebuddy/kong audit_client_id=… hydra_access_token_public_key=@hydra.pem jwt_unused_secret=\"\$(head -c 32 /dev/urandom | base64)\""
