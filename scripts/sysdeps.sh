#!/usr/bin/env bash
# Installs the system packages some tests need, when they are missing:
#   chromium              browser tests (Playwright drives /usr/bin/chromium)
#   libxml-security-java  Apache Santuario, the interop oracle for AS4 signatures and encryption
#   xmlsec1               the signer pysaml2 calls for SAML assertions
# Where they cannot be installed (not root, no apt-get), it says so; the tests that need them skip
# with the same reason.
set -u
cd "$(dirname "$0")/.."

# axe-core (npm) for the accessibility scans of the browser tests: a tarball in .cache/axe, no root needed.
if ! ls .cache/axe/axe-core-*.tgz >/dev/null 2>&1; then
  if command -v npm >/dev/null 2>&1; then
    mkdir -p .cache/axe
    (cd .cache/axe && npm pack --silent axe-core@4 >/dev/null 2>&1) \
      || echo "sysdeps: npm could not fetch axe-core; the accessibility scans will skip." >&2
  else
    echo "sysdeps: npm is missing, so axe-core cannot be fetched; the accessibility scans will skip." >&2
  fi
fi

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -f /usr/share/java/xmlsec.jar ] || missing+=(libxml-security-java libbcprov-java)
command -v xmlsec1 >/dev/null 2>&1 || missing+=(xmlsec1)
command -v javac >/dev/null 2>&1 || missing+=(default-jdk-headless)
fc-list 2>/dev/null | grep -qi dejavu || missing+=(fonts-dejavu-core)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "sysdeps: cannot install ${missing[*]} (needs root and apt-get); the tests that need them will skip." >&2
  exit 0
fi
echo "sysdeps: installing ${missing[*]} with apt-get ..."
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }; then
  echo "sysdeps: apt-get could not install ${missing[*]}; the tests that need them will skip." >&2
fi
exit 0
