# Helpers for the CLI tests: each check counts one case; finish prints the harness summary line.
# Needs LEMUR (the binary) and LEMUR_TMP (a scratch directory), set by tests/run.sh.
: "${LEMUR:?}" "${LEMUR_TMP:?}"
cli_passed=0
cli_failed=0
MPIRUN=(mpirun --oversubscribe)

# expect_fail NAME NEEDLE CMD...: the command exits non-zero and its stderr contains NEEDLE.
expect_fail() {
    local name=$1 needle=$2; shift 2
    local err rc
    err=$("$@" 2>&1 >/dev/null); rc=$?
    if [ $rc -ne 0 ] && grep -qF -- "$needle" <<<"$err"; then
        cli_passed=$((cli_passed + 1)); echo "ok   $name"
    else
        cli_failed=$((cli_failed + 1)); echo "FAIL $name (rc=$rc): wanted '$needle' in: $err"
    fi
}

# expect_ok NAME NEEDLE CMD...: the command exits 0 and its stdout contains NEEDLE.
expect_ok() {
    local name=$1 needle=$2; shift 2
    local out rc
    out=$("$@" 2>&1); rc=$?
    if [ $rc -eq 0 ] && grep -qF -- "$needle" <<<"$out"; then
        cli_passed=$((cli_passed + 1)); echo "ok   $name"
    else
        cli_failed=$((cli_failed + 1)); echo "FAIL $name (rc=$rc): wanted '$needle' in: $out"
    fi
}

# check NAME CONDITION...: a plain test(1) condition.
check() {
    local name=$1; shift
    if "$@"; then cli_passed=$((cli_passed + 1)); echo "ok   $name"
    else cli_failed=$((cli_failed + 1)); echo "FAIL $name"; fi
}

finish() {
    echo "cases: passed=$cli_passed failed=$cli_failed"
    [ $cli_failed -eq 0 ]
}
