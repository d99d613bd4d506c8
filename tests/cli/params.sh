# Parameter files and the command line: every error class names what is wrong and exits non-zero.
source "$(dirname "$0")/lib.bash"
d=$LEMUR_TMP/cli-params
rm -rf "$d"; mkdir -p "$d"
cd "$d"
printf 'box: {size: 250, n: 16}\n' > good.yml
printf 'cosmology: {Omega_M: 0.3}\n' > misspelt.yml
printf 'box:\n  size: -5\n' > negative.yml
printf 'box:\n  size: 250abc\n' > junk.yml
printf 'box:\n  n: twelve\n' > type.yml
printf 'box: [1, 2\n' > syntax.yml
printf 'emulator: {backend: tpu}\n' > choice.yml
printf 'run: {stages: [ic, emulat]}\n' > stage.yml

expect_ok   "info on a valid file" "the configuration is valid" "$LEMUR" info good.yml
expect_ok   "info prints D(z)" "0.52945659" "$LEMUR" info good.yml
expect_ok   "info on config/default.yml" "the configuration is valid" "$LEMUR" info "$OLDPWD/config/default.yml"
expect_fail "misspelt key is named" "unknown key 'cosmology.Omega_M'" "$LEMUR" info misspelt.yml
expect_fail "misspelt key suggests" "did you mean 'cosmology.Omega_m'" "$LEMUR" info misspelt.yml
expect_fail "negative box.size names key and range" "box.size = -5 is out of range: expected a value in (0, inf)" "$LEMUR" info negative.yml
expect_fail "trailing junk rejected" "'250abc' is not a number" "$LEMUR" info junk.yml
expect_fail "wrong type" "box.n: 'twelve' is not an integer" "$LEMUR" info type.yml
expect_fail "YAML syntax error with line" "syntax.yml:2: YAML syntax error" "$LEMUR" info syntax.yml
expect_fail "choice" "expected one of cpu|gpu|auto" "$LEMUR" info choice.yml
expect_fail "unknown stage, with the nearest" "run.stages[1] = 'emulat' is not a stage: did you mean 'emulate'?" "$LEMUR" info stage.yml
expect_fail "missing file" "cannot open parameter file 'nope.yml'" "$LEMUR" info nope.yml
expect_fail "override unknown key" "did you mean 'box.size'" "$LEMUR" info good.yml box.siz=3
expect_fail "override bad value" "'x' is not a number" "$LEMUR" info good.yml box.size=x
expect_ok   "override applies" "size: 125" "$LEMUR" info good.yml box.size=125
expect_fail "unknown command" "unknown command 'bogus'" "$LEMUR" bogus good.yml
expect_fail "command without a file" "needs a parameter file" "$LEMUR" info
expect_ok   "--version" "lemur " "$LEMUR" --version
expect_ok   "--help lists commands" "emulate" "$LEMUR" --help
expect_ok   "command --help" "usage: lemur power" "$LEMUR" power --help
expect_ok   "schema table" "| \`box.size\` | real |" "$LEMUR" info --schema
expect_fail "error once from rank 0 at 3 ranks" "did you mean 'cosmology.Omega_m'" "${MPIRUN[@]}" -n 3 "$LEMUR" info misspelt.yml
n=$("${MPIRUN[@]}" -n 3 "$LEMUR" info misspelt.yml 2>&1 | grep -c "unknown key")
check "the message is printed once at 3 ranks" [ "$n" -eq 1 ]
finish
