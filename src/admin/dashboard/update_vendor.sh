#!/usr/bin/env bash
# Refreshes vendor/ from the pinned npm package (package.json + package-lock.json): the build
# embeds vendor/chart.umd.min.js into the binary and never runs npm itself, so this is the only
# step that needs the npm registry. After bumping chart.js in package.json:
#   npm install --package-lock-only && bash update_vendor.sh && git add vendor package*.json
# Writes vendor/chart.umd.min.js (the UMD build, its own license banner kept, the sourceMappingURL
# line dropped: the map is not served) and vendor/LICENSE.md (chart.js's and @kurkle/color's,
# which the UMD build bundles).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

npm ci --no-audit --no-fund --loglevel=error
version="$(node -p "require('./node_modules/chart.js/package.json').version")"
pinned="$(node -p "require('./package.json').dependencies['chart.js']")"
if [ "$version" != "$pinned" ]; then
  echo "update_vendor: node_modules has chart.js $version, package.json pins $pinned" >&2
  exit 1
fi

mkdir -p vendor
src=node_modules/chart.js/dist/chart.umd.min.js
grep -v '^//# sourceMappingURL=' "$src" >vendor/chart.umd.min.js
# The C++ embedding wraps the file in a raw string literal with this delimiter.
if grep -q ')llmcache_dash' vendor/chart.umd.min.js; then
  echo "update_vendor: the library contains the raw-string delimiter; change it in src/admin/CMakeLists.txt" >&2
  exit 1
fi
{
  echo "Files in this folder are copied from npm packages by ../update_vendor.sh; do not edit them."
  echo
  echo "chart.umd.min.js: chart.js $version (https://www.chartjs.org), which bundles @kurkle/color"
  echo "$(node -p "require('./node_modules/@kurkle/color/package.json').version")."
  echo
  echo "## chart.js"
  echo
  cat node_modules/chart.js/LICENSE.md
  echo
  echo "## @kurkle/color"
  echo
  cat node_modules/@kurkle/color/LICENSE.md
} >vendor/LICENSE.md
echo "update_vendor: vendor/chart.umd.min.js is chart.js $version ($(wc -c <vendor/chart.umd.min.js) bytes)"
