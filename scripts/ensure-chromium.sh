#!/usr/bin/env bash
# Make sure Debian's Chromium is installed, for the web UI's browser tests
# (Playwright drives /usr/bin/chromium; its own browser download is never used).
# Installs the package when missing (needs root, as in CI); prints where it is.
set -euo pipefail
BIN=/usr/bin/chromium
if [ ! -x "$BIN" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "Chromium is missing; run as root or: apt-get install chromium" >&2
        exit 1
    fi
    echo "Installing Chromium (Debian package chromium) ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    # A clean machine may have no package lists yet: update only if needed.
    if ! apt-get install -y -qq chromium >/dev/null 2>&1; then
        if ! { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; then
            echo "could not install Debian's chromium package (see apt-get's errors above)" >&2
            exit 1
        fi
    fi
fi
if [ ! -x "$BIN" ]; then
    echo "$BIN is still missing after installing the chromium package" >&2
    exit 1
fi
echo "$BIN"
