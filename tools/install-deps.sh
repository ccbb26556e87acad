#!/bin/sh
# Installs the Debian packages hone needs to build and test, when they are missing.
# As root (or with password-less sudo) it runs apt-get; otherwise it prints the exact command and stops.
set -e
PKGS="cmake make gcc pkg-config libopenblas-openmp-dev libjansson-dev libyaml-dev libcmocka-dev libpcre2-dev libutf8proc-dev zlib1g-dev libcurl4-openssl-dev"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
echo "hone: installing missing Debian packages:$missing"
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "hone: cannot install packages without root. Run:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q $missing
