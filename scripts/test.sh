#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine (OS packages when run as
# root, a .venv with the Python packages, the Azurite emulator from npm), then runs
# ruff, mypy and the whole suite. The README's "Run the tests" and CI's .ci/run both
# call this script. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# OS tools the tests use, listed with the reason for each in scripts/os-packages.txt
# (installed only when run as root on a machine with apt-get).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq
  # shellcheck disable=SC2046
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    $(sed -e 's/#.*//' scripts/os-packages.txt) >/dev/null
fi

python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e '.[test,lint]'
# The Azurite storage emulator (pinned in tests/azurite/package.json) for the verify tests;
# tests/azurite.py runs the same step itself when it is missing.
npm install --prefix tests/azurite --no-audit --no-fund
# The S3 server that checks presigned URLs' signatures (pinned in tests/s3rver/package.json
# and its lock file); tests/awsservers.py runs the same step itself when it is missing.
npm ci --prefix tests/s3rver --no-audit --no-fund
# esbuild (pinned in tests/site/package-lock.json) bundles the crawl tests' website
npm ci --prefix tests/site --no-audit --no-fund
# playwright-core (pinned in tests/browser/package-lock.json) drives Debian's chromium in
# the HTML report tests; tests/browser.py runs the same step itself when it is missing.
npm ci --prefix tests/browser --no-audit --no-fund

ruff check .
mypy
python -m pytest "$@"
