#!/usr/bin/env bash
# Runs the test suite once per Keras backend and fails if any backend fails.
# Usage: bash .ci/test_backends.sh tensorflow jax torch -- [pytest arguments]
set -uo pipefail
PYTHON=${PYTHON:-python3}
backends=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do backends+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#backends[@]} -gt 0 ] || backends=(tensorflow jax torch)
reports=$(mktemp -d)
status=0
for backend in "${backends[@]}"; do
  echo "=== tests on the $backend backend ==="
  start=$(date +%s)
  KERAS_BACKEND=$backend TF_CPP_MIN_LOG_LEVEL=3 "$PYTHON" -m pytest -q -p no:cacheprovider \
    --junitxml="$reports/$backend.xml" "$@"
  code=$?
  echo "=== $backend: exit code $code, $(( $(date +%s) - start )) s ==="
  [ $code -eq 0 ] || status=1
done
"$PYTHON" - "$reports" "${backends[@]}" <<'PY'
import sys, pathlib, xml.etree.ElementTree as ET
folder, backends = pathlib.Path(sys.argv[1]), sys.argv[2:]
totals = dict(passed=0, failed=0, skipped=0)
for backend in backends:
    path = folder / f"{backend}.xml"
    if not path.exists():
        print(f"{backend}: no report (pytest did not run)"); totals["failed"] += 1; continue
    suite = ET.parse(path).getroot()
    suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
    tests, failures, errors, skipped = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    passed = tests - failures - errors - skipped
    print(f"{backend}: {passed} passed, {failures + errors} failed, {skipped} skipped")
    totals["passed"] += passed; totals["failed"] += failures + errors; totals["skipped"] += skipped
print(f"all backends: {totals['passed']} passed, {totals['failed']} failed, {totals['skipped']} skipped")
PY
exit $status
