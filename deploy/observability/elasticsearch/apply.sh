#!/usr/bin/env bash
# Installs the 30-day ILM policy and the index template for CoffeeBuddy's
# logs into Elasticsearch. Idempotent (PUT). Credentials never on the
# command line or in a file here:
#   ELASTICSEARCH_URL            e.g. https://elasticsearch.logging:9200
#   ELASTICSEARCH_USER           a user allowed to manage ILM and templates
#   ELASTICSEARCH_PASSWORD_FILE  a file holding its password (Vault agent)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${ELASTICSEARCH_URL:?set ELASTICSEARCH_URL}" "${ELASTICSEARCH_USER:?set ELASTICSEARCH_USER}" "${ELASTICSEARCH_PASSWORD_FILE:?set ELASTICSEARCH_PASSWORD_FILE}"
put() { # path file
  curl --fail-with-body -sS -X PUT "$ELASTICSEARCH_URL/$1" \
    -K <(printf 'user = "%s:%s"\n' "$ELASTICSEARCH_USER" "$(cat "$ELASTICSEARCH_PASSWORD_FILE")") \
    -H 'Content-Type: application/json' --data-binary "@$here/$2"
  echo
}
put _ilm/policy/coffeebuddy-logs ilm-policy.json
put _index_template/coffeebuddy-logs index-template.json
