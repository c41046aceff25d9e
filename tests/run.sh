#!/bin/sh
# Set up pyoci with its test tools and run every test (run as root).
set -eu
cd "$(dirname "$0")/.."
sh scripts/bootstrap.sh --test
.venv/bin/python -m ruff check pyoci tests conformance
echo "--- unit and integration tests ---"
.venv/bin/python -m pytest tests -q -p no:cacheprovider "$@"
echo "--- conformance suite against pyoci ---"
PATH="$PWD/.venv/bin:$PATH" .venv/bin/python -m pytest conformance -q -p no:cacheprovider --runtime pyoci
