#!/usr/bin/env bash
# Refresh the vendored browser assets from the npm registry: installs the versions pinned in
# package.json (package-lock.json is committed; node_modules is not), copies the OpenAPI viewer's
# bundle, CSS and licence into swagger-ui/ and Chart.js's minified UMD build and licence into
# chartjs/, and records their sha256 in <dir>/SHA256SUMS, which front/build.rs checks at every
# build.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp package.json "$work/"
[ -f package-lock.json ] && cp package-lock.json "$work/"
(cd "$work" && if [ -f package-lock.json ] && npm ci --ignore-scripts --no-audit --no-fund; then :; else npm install --ignore-scripts --no-audit --no-fund; fi)
cp "$work/package-lock.json" package-lock.json
src="$work/node_modules/swagger-ui-dist"
mkdir -p swagger-ui
for f in swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE; do
    cp "$src/$f" "swagger-ui/$f"
done
# The bundle ends with a sourceMappingURL comment for a map we do not ship.
sed -i '/^\/\/# sourceMappingURL=/d' swagger-ui/swagger-ui-bundle.js
sed -i 's#/\*\# sourceMappingURL=[^*]*\*/##' swagger-ui/swagger-ui.css
version=$(node -p "require('$src/package.json').version")
(cd swagger-ui && sha256sum swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE > SHA256SUMS && echo "swagger-ui-dist $version" > VERSION)
echo "swagger-ui-dist $version vendored into $(pwd)/swagger-ui"

# Chart.js (the dashboard): the minified UMD build, without its source map comment.
src="$work/node_modules/chart.js"
mkdir -p chartjs
cp "$src/dist/chart.umd.min.js" chartjs/chart.umd.min.js
cp "$src/LICENSE.md" chartjs/LICENSE.md
sed -i 's#//\# sourceMappingURL=[^ ]*$##' chartjs/chart.umd.min.js
version=$(node -p "require('$src/package.json').version")
(cd chartjs && sha256sum chart.umd.min.js LICENSE.md > SHA256SUMS && echo "chart.js $version" > VERSION)
echo "chart.js $version vendored into $(pwd)/chartjs"
