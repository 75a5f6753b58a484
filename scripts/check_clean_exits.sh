#!/usr/bin/env bash
# Runs the 2-process accelerate test N times in a row (default 10) and counts the runs that did not
# exit cleanly, e.g. a SIGABRT ("terminate called without an active exception") at process exit.
#   bash scripts/check_clean_exits.sh [N]
set -u
cd "$(dirname "$0")/.."
runs=${1:-10}
failures=0
for run in $(seq 1 "$runs"); do
  if HF_HUB_OFFLINE=1 .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_distributed.py > /tmp/smmix_exit_check.log 2>&1; then
    echo "run $run: clean"
  else
    failures=$((failures + 1))
    echo "run $run: FAILED"
    grep -m5 -E "terminate called|SIGABRT|Signal|returncode|Error" /tmp/smmix_exit_check.log
  fi
done
echo "$((runs - failures))/$runs runs clean"
[ "$failures" -eq 0 ]
