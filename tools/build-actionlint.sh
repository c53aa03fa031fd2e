#!/usr/bin/env bash
# Build actionlint (GitHub Actions workflow linter) from its Go module into tools/bin.
# Debian ships no actionlint package; the Go module proxy does. Cached: a second run is a no-op.
set -euo pipefail
VERSION=v1.7.12
cd "$(dirname "$0")"
mkdir -p bin
if [ -x bin/actionlint ] && [ "$(bin/actionlint -version | head -n1)" = "$VERSION" ]; then
  exit 0
fi
GOBIN="$PWD/bin" GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@$VERSION"
bin/actionlint -version | head -n1
