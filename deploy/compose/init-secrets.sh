#!/bin/sh
# Creates each secret the compose services read, once, in the `secrets` volume: 32 random bytes as hex (the master
# key's format). Readable by the services' users (node 1000, postgres 999), which only this project's containers mount.
set -eu
for name in $SECRET_NAMES; do
  if [ ! -s "/secrets/$name" ]; then
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"/secrets/$name.tmp"
    mv "/secrets/$name.tmp" "/secrets/$name"
  fi
done
# The API's callers, as in the local stack: an operator (also restorer and admin) and an approver. Each token's
# plaintext in its own file, for whoever it is handed to; the API reads only their SHA-256 digests, in $API_TOKENS_FILE.
if [ ! -s "/secrets/$API_TOKENS_FILE" ]; then
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  entry() { # token file, principal, roles (JSON)
    id=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
    token="vpb_${id}_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    printf '%s\n' "$token" >"/secrets/$1"
    digest=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
    printf '    { "id": "%s", "principal": "%s", "roles": %s, "sha256": "%s", "createdAt": "%s" }' "$id" "$2" "$3" "$digest" "$now"
  }
  {
    printf '{\n  "tokens": [\n'
    entry api-token compose-operator '["viewer", "operator", "restorer", "admin"]'
    printf ',\n'
    entry api-token-approver compose-approver '["viewer", "approver"]'
    printf '\n  ]\n}\n'
  } >"/secrets/$API_TOKENS_FILE.tmp"
  mv "/secrets/$API_TOKENS_FILE.tmp" "/secrets/$API_TOKENS_FILE"
fi
# Restore requests and approvals are signed by the API and verified by the worker: one Ed25519 pair, made once.
set -- $APPROVAL_KEYS
if [ ! -s "/secrets/$1" ]; then
  command -v openssl >/dev/null || apk add --no-cache openssl >/dev/null
  openssl genpkey -algorithm ed25519 -out "/secrets/$1.tmp"
  mv "/secrets/$1.tmp" "/secrets/$1"
  rm -f "/secrets/$2"
fi
[ -s "/secrets/$2" ] || openssl pkey -in "/secrets/$1" -pubout -out "/secrets/$2"
chmod 0444 /secrets/*
# The image runs as node (uid 1000): the filesystem backup location and the sandbox's state are its to write.
chown 1000:1000 /backups /state
