#!/usr/bin/env bash
# Fetches Bot Framework Web Chat's bundle (the official botframework-webchat package from
# the npm registry, pinned with its registry integrity) into the package's static files, so
# that midtier serves the Direct Line page's script itself and never from a CDN.
# Safe to run again: it does nothing when the bundle is already there and checks out.
set -euo pipefail
cd "$(dirname "$0")/.."

version="4.18.1"
# dist.integrity of botframework-webchat@4.18.1 at https://registry.npmjs.org/botframework-webchat
integrity="sha512-7jpEUJ7olT62Xm+8eh7BhhIcXVfU2xD4pZDaeBt8K4XcNy6K/83UGIxE9BFkXmHMZ4hDEVOzs5cre07GWuaXzg=="
# ... and of package/dist/webchat.js inside that tarball, to check a bundle already in place.
bundle_sha512="/QHdP14QBRIOHw8gBEffy7VpWq0cTaGkr70Sg3ceo6KO0gaHOIWbC7OXB0Rmqp7sV1c/PU5zDh8p23uz8L88+A=="
# npm's own variable names a mirror; the integrity check is the same whichever answers.
registry="${NPM_CONFIG_REGISTRY:-https://registry.npmjs.org}"
tarball="${registry%/}/botframework-webchat/-/botframework-webchat-${version}.tgz"
vendor="adapters/channels/static/vendor"
bundle="$vendor/webchat.js"

digest() { openssl dgst -sha512 -binary "$1" | base64 -w0; }

if [ -f "$bundle" ]; then
  [ "$(digest "$bundle")" = "$bundle_sha512" ] && exit 0
  # Not the pinned bundle (changed, cut short): never left where midtier would serve it.
  echo "==> $bundle is not the pinned bundle: removing it"
  rm -f "$bundle"
fi

echo "==> fetching botframework-webchat ${version}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl --fail --silent --show-error --location --max-time 300 --retry 3 \
  -o "$work/webchat.tgz" "$tarball"
got="sha512-$(digest "$work/webchat.tgz")"
if [ "$got" != "$integrity" ]; then
  echo "botframework-webchat-${version}.tgz does not match its registry integrity" >&2
  echo "  expected $integrity" >&2
  echo "  got      $got" >&2
  exit 1
fi
tar -xzf "$work/webchat.tgz" -C "$work" package/dist/webchat.js package/dist/webchat.js.LICENSE.txt
if [ "$(digest "$work/package/dist/webchat.js")" != "$bundle_sha512" ]; then
  echo "package/dist/webchat.js of botframework-webchat ${version} is not the one pinned" >&2
  exit 1
fi
mkdir -p "$vendor"
# The licences of what the bundle holds travel with it.
cp "$work/package/dist/webchat.js.LICENSE.txt" "$vendor/webchat.js.LICENSE.txt"
cp "$work/package/dist/webchat.js" "$bundle.tmp"
mv "$bundle.tmp" "$bundle"
echo "==> $bundle (botframework-webchat ${version})"
