#!/bin/sh
# Set up pyoci with its test tools and run every test (run as root).
#
# Every stage runs even when an earlier one fails (a pytest failure must not hide what the
# conformance suite says); each stage's result is printed at the end, and the script exits
# 1 if any stage failed (CI reads the exit status). Only the setup stops the run: without
# the venv nothing else can run.
set -eu
cd "$(dirname "$0")/.."
sh scripts/bootstrap.sh --test

failed=""
summary=""

# stage NAME COMMAND...: run one stage; `if` keeps `set -e` from ending the script on
# its failure, and its status is recorded instead.
stage() {
    name=$1
    shift
    echo "--- $name ---"
    if "$@"; then
        summary="$summary
  ok      $name"
    else
        status=$?
        summary="$summary
  FAILED  $name (exit status $status)"
        failed="$failed $name"
    fi
}

stage "ruff" .venv/bin/python -m ruff check pyoci tests conformance bench
stage "mypy" .venv/bin/python -m mypy
stage "unit and integration tests" \
    .venv/bin/python -m pytest tests -q -p no:cacheprovider "$@"
stage "conformance suite against pyoci" \
    env PATH="$PWD/.venv/bin:$PATH" .venv/bin/python -m pytest conformance -q \
    -p no:cacheprovider --runtime pyoci

echo "--- summary ---$summary"
if [ -n "$failed" ]; then
    echo "tests/run.sh: failed:$failed" >&2
    exit 1
fi
echo "tests/run.sh: every stage passed"
