#!/usr/bin/env bash
# Installs what this project needs on a fresh Debian 12 host, idempotently, and prints the
# path of the Python virtualenv to use. Sourced or run by tests/run and lab/run.
#   Debian packages: the real tools the tests check rendered configs with (cloud-init,
#     Postfix, Taylor UUCP, OpenSSH) and the lab's (debootstrap, systemd-nspawn, apt-utils).
#   A virtualenv with requirements-dev.txt, cached outside the checkout and keyed by the
#     requirements' hash, so a clean clone reuses it and a changed pin builds a new one.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${MAILMESH_CACHE:-/var/cache/uucp-mailmesh}"
packages=(cloud-init postfix uucp openssh-server openssh-client debootstrap systemd-container
          apt-utils iproute2)

if [ "$(id -u)" -ne 0 ]; then
    echo "uucp-mailmesh setup: run as root (it installs Debian packages)" >&2
    exit 1
fi

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "uucp-mailmesh setup: installing ${missing[*]}" >&2
    # The tests only read these programs' config checkers: keep their daemons from starting
    # on this host (and Postfix from asking questions).
    policy=/usr/sbin/policy-rc.d
    own_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && own_policy=1
    fi
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2
    [ -z "$own_policy" ] || rm -f "$policy"
fi

hash="$(cat "$root/requirements.txt" "$root/requirements-dev.txt" | sha256sum | cut -c1-12)"
venv="$cache/venv-$hash"
if [ ! -x "$venv/bin/python" ] || [ ! -e "$venv/.complete" ]; then
    echo "uucp-mailmesh setup: creating $venv" >&2
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/requirements-dev.txt" >&2
    touch "$venv/.complete"
fi
echo "$venv"
