#!/usr/bin/env bash
# What the playground stage needs beyond scripts/setup.sh: Debian's chromium and chromium-driver
# (headless browser and its WebDriver), and Selenium from PyPI. Idempotent; prints what it does.
#
# selenium is pinned to 4.51.0: 4.52.0 needs certifi>=2026.10.23, which PyPI's mirror here does
# not serve yet.
set -euo pipefail
say() { printf '\033[1m[playground]\033[0m %s\n' "$*"; }
SELENIUM_VERSION=4.51.0

missing=()
for p in chromium chromium-driver; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]} (about 130 MB to download)"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=900 update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -q \
    --no-install-recommends "${missing[@]}"
fi
if ! python3 -c "import selenium, sys; sys.exit(selenium.__version__ != '$SELENIUM_VERSION')" 2>/dev/null; then
  say "installing selenium $SELENIUM_VERSION"
  python3 -m pip install -q --disable-pip-version-check "selenium==$SELENIUM_VERSION"
fi
say "$(chromium --version 2>/dev/null | head -1), $(chromedriver --version | cut -d' ' -f1-2), selenium $SELENIUM_VERSION"
