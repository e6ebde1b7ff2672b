#!/usr/bin/env bash
# Builds pam_mamori and installs it where this system's PAM modules live (docs/pam.md).
# Usage (as root): scripts/install-pam-module.sh [MODULE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."

# The directory that holds pam_unix.so, unless one is given.
dir="${1:-}"
if [[ -z "$dir" ]]; then
  for d in /lib/*/security /usr/lib/*/security /lib/security /usr/lib/security /lib64/security; do
    if [[ -e "$d/pam_unix.so" ]]; then dir="$d"; break; fi
  done
fi
if [[ -z "$dir" || ! -d "$dir" ]]; then
  echo "no PAM module directory found (no pam_unix.so); give it: $0 /path/to/security" >&2
  exit 1
fi

cargo build --release -p mamori-pam
install -o root -g root -m 0644 target/release/libpam_mamori.so "$dir/pam_mamori.so"
echo "installed $dir/pam_mamori.so"
if [[ ! -e /etc/mamori/pam.conf ]]; then
  echo "next: create /etc/mamori/pam.conf (owner root, mode 0600) as docs/pam.md shows"
fi
