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
chmod 0444 /secrets/*
# The image runs as node (uid 1000): the filesystem backup location and the sandbox's state are its to write.
chown 1000:1000 /backups /state
