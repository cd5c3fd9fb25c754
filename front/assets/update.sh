#!/usr/bin/env bash
# Refresh the vendored OpenAPI viewer from the npm registry: installs the version pinned in
# package.json (package-lock.json is committed; node_modules is not), copies the built bundle, its
# CSS and licence into swagger-ui/, and records their sha256 in swagger-ui/SHA256SUMS, which
# front/build.rs checks at every build.
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp package.json "$work/"
[ -f package-lock.json ] && cp package-lock.json "$work/"
(cd "$work" && if [ -f package-lock.json ]; then npm ci --ignore-scripts --no-audit --no-fund; else npm install --ignore-scripts --no-audit --no-fund; fi)
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
