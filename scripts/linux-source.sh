#!/usr/bin/env bash
# Extract the few files the build takes from Debian's linux-source-6.1 tarball
# (never committed to the repository):
#   .cache/checkpatch/  checkpatch.pl spelling.txt const_structs.checkpatch
#   .cache/ksft/        kselftest.h kselftest_harness.h (KSFT_DIR for selftests/)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

tarball=$(compgen -G '/usr/src/linux-source-6.1.tar.*' | head -n 1) ||
	die "no /usr/src/linux-source-6.1.tar.*; run scripts/deps.sh"
stamp="$CACHE/linux-source.stamp"
# Redo only when the tarball changed (a new linux-source-6.1 package).
[ -e "$stamp" ] && [ "$stamp" -nt "$tarball" ] && exit 0

mkdir -p "$CACHE"
tmp=$(mktemp -d "$CACHE/linux-source.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# One pass: decompressing the tarball is the slow part (~8 s).
tar -xf "$tarball" -C "$tmp" --strip-components=1 --wildcards \
	'*/scripts/checkpatch.pl' '*/scripts/spelling.txt' '*/scripts/const_structs.checkpatch' \
	'*/tools/testing/selftests/kselftest.h' '*/tools/testing/selftests/kselftest_harness.h'
rm -rf "$CACHE/checkpatch" "$CACHE/ksft"
mkdir -p "$CACHE/checkpatch" "$CACHE/ksft"
mv "$tmp"/scripts/{checkpatch.pl,spelling.txt,const_structs.checkpatch} "$CACHE/checkpatch/"
mv "$tmp"/tools/testing/selftests/kselftest{,_harness}.h "$CACHE/ksft/"
touch "$stamp"
