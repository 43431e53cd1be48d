#!/usr/bin/env bash
# Installs headless Chromium from Debian's `chromium` package when it is missing (the Web UI browser test drives it); prints its path.
#
# Runs unattended (CI clones have no stdin): apt-get without prompts, the package index refreshed only when the
# package is not known yet. Needs root, or sudo without a password.
set -euo pipefail

find_chromium() {
  for name in chromium chromium-browser; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
  done
  return 1
}

if path=$(find_chromium); then
  echo "$path"
  exit 0
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "install-chromium: chromium is missing and installing it needs root (apt-get install -y chromium)" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
# Another apt-get on the machine holds the lock for a while: wait for it rather than fail.
APT_OPTS=(-o DPkg::Lock::Timeout=600 -y -q)
if ! apt-cache show chromium >/dev/null 2>&1; then
  echo "install-chromium: refreshing the package index" >&2
  $SUDO apt-get "${APT_OPTS[@]}" update >&2
fi
echo "install-chromium: apt-get install chromium" >&2
if ! $SUDO apt-get "${APT_OPTS[@]}" install --no-install-recommends chromium >&2 </dev/null; then
  # An index that names versions the mirror no longer holds: refresh it once and try again.
  $SUDO apt-get "${APT_OPTS[@]}" update >&2
  $SUDO apt-get "${APT_OPTS[@]}" install --no-install-recommends chromium >&2 </dev/null
fi

if path=$(find_chromium); then
  echo "$path"
else
  echo "install-chromium: apt-get installed chromium, yet no chromium binary is on PATH" >&2
  exit 1
fi
