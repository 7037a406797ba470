# Policy coffeebuddy-secrets-operator: what a person running
# rotate-slack-secrets.sh (or rotating a database password ahead of its 90
# days) needs, nothing else. Hand-written (not generated): it is for people,
# not pods. Attach it to the operators' own Vault identity, never to a
# function's role.

# Write the new Slack signing secret and bot token; read them back to check.
path "secret/data/coffeebuddy/slack" {
  capabilities = ["create", "update", "read"]
}

# The versions, to see what changed and to roll back (vault kv rollback).
path "secret/metadata/coffeebuddy/slack" {
  capabilities = ["read"]
}

# The audit API's cursor key (rotating it ends outstanding cursors).
path "secret/data/coffeebuddy/audit-api" {
  capabilities = ["create", "update", "read"]
}

# Kong's secret for the decK sync (deploy/kong/README.md), and its versions.
path "secret/data/coffeebuddy/kong" {
  capabilities = ["create", "update", "read"]
}
path "secret/metadata/coffeebuddy/kong" {
  capabilities = ["read"]
}

# Rotate a database role's password now, and see when it next rotates.
path "database/rotate-role/coffeebuddy-*" {
  capabilities = ["update"]
}
path "database/static-roles/coffeebuddy-*" {
  capabilities = ["read"]
}
