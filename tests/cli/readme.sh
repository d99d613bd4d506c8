# README.md documents every parameter exactly as the schema table says (tools/update-readme).
source "$(dirname "$0")/lib.bash"
cd "$(dirname "$0")/../.."
expected=$("$LEMUR" info --schema)
actual=$(sed -n '/<!-- schema:begin -->/,/<!-- schema:end -->/p' README.md | sed '1d;$d')
check "README parameter table matches lemur info --schema (run tools/update-readme)" \
    [ "$expected" == "$actual" ]
check "README shows make demo" grep -q 'make demo' README.md
check "README shows make check" grep -q 'make check' README.md
finish
