#!/usr/bin/env bash
# The fast first stage of scripts/test.sh (seconds, no build). Fails, naming file and rule, on:
#   format     a tracked *.cc/*.h that clang-format (.clang-format, clang-format 14 as in
#              Debian 12) would change. Fix: clang-format -i FILE
#   includes   an #include that breaks the module table, a test-only header in non-test code,
#              a module README whose "Must not include:" disagrees with the table
#              (scripts/check_includes.py holds the table and the rules; it tests itself first).
# Needs clang-format and python3 (scripts/setup.sh installs both).
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()

# --- format -------------------------------------------------------------------------------
if ! command -v clang-format >/dev/null 2>&1; then
  echo "check: [format] clang-format not found: run scripts/setup.sh (as root)" >&2
  failed+=(format)
else
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t listed < <(git ls-files -- '*.cc' '*.h')
  else  # a tarball without .git: the same folders git tracks
    mapfile -t listed < <(find src tests bench fuzz \( -name node_modules -prune \) -o \
      -type f \( -name '*.cc' -o -name '*.h' \) -print 2>/dev/null | sort)
  fi
  files=()
  for f in "${listed[@]}"; do [ -f "$f" ] && files+=("$f"); done  # skip deleted, not yet staged
  if ! out=$(clang-format --dry-run -Werror "${files[@]}" 2>&1); then
    mapfile -t drifted < <(printf '%s\n' "$out" | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: .*/\1/p' | sort -u)
    for f in "${drifted[@]}"; do
      echo "check: [format] $f is not clang-formatted (fix: clang-format -i $f)" >&2
    done
    if [ ${#drifted[@]} -eq 0 ]; then printf '%s\n' "$out" >&2; fi
    version=$(clang-format --version)
    case "$version" in
      *" 14."*) ;;
      *) echo "check: [format] note: $version; the tree is formatted with clang-format 14" >&2 ;;
    esac
    failed+=(format)
  else
    echo "check: format ok (${#files[@]} files)"
  fi
fi

# --- includes -----------------------------------------------------------------------------
if ! python3 scripts/check_includes.py --self-test >/dev/null; then
  python3 scripts/check_includes.py --self-test >&2
  failed+=(includes-self-test)
elif ! python3 scripts/check_includes.py; then
  failed+=(includes)
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "check: FAILED (${failed[*]})" >&2
  exit 1
fi
echo "check: ok"
