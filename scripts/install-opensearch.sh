#!/usr/bin/env bash
# Lays out a single-node OpenSearch for internal/testenv (StartOpenSearch)
# under $TOOLS_DIR/opensearch-$VERSION from Maven artifacts: lib/ holds the
# server and its dependencies, modules/<name>/ each module's own jars plus the
# plugin-descriptor.properties and plugin-security.policy the published jars
# lack. Idempotent: a finished layout is marked with .complete.
set -euo pipefail

TOOLS_DIR=${UNIKUBE_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/unikube-state}
VERSION=2.19.6 # 3.x needs Java 21; the machines have Java 17
LOG4J=2.25.4   # the log4j-api the server pulls in; log4j-core is not a dependency of its pom
HOME_DIR="$TOOLS_DIR/opensearch-$VERSION"
POM="$(cd "$(dirname "$0")" && pwd)/opensearch/pom.xml"

if [ -f "$HOME_DIR/.complete" ]; then
  exit 0
fi
for tool in java mvn; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install-opensearch: $tool not found; install a Java 17 JDK and Maven (Debian: openjdk-17-jdk-headless maven)" >&2
    exit 1
  fi
done
echo "install-opensearch: resolving OpenSearch $VERSION from Maven into $HOME_DIR"
tmp="$HOME_DIR.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/lib" "$tmp/modules"

copy() { # group artifact version outdir
  mvn -q -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
    -Dpart.group="$1" -Dpart.artifact="$2" -Dpart.version="$3" -DoutputDirectory="$4"
}
copy org.opensearch opensearch "$VERSION" "$tmp/lib"
copy org.apache.logging.log4j log4j-core "$LOG4J" "$tmp/lib"
copy org.opensearch opensearch-plugin-classloader "$VERSION" "$tmp/lib"

module() { # dir artifact classname extended-plugins [policy lines...]
  local dir=$1 artifact=$2 class=$3 extended=$4
  shift 4
  local out="$tmp/modules/$dir"
  copy org.opensearch.plugin "$artifact" "$VERSION" "$out"
  # The server's own jars are on the classpath already; a second copy in
  # the module would fail OpenSearch's jar-hell check.
  local j
  for j in "$out"/*.jar; do
    if [ -e "$tmp/lib/$(basename "$j")" ]; then rm "$j"; fi
  done
  cat >"$out/plugin-descriptor.properties" <<PROPS
description=$dir module, from Maven artifact org.opensearch.plugin:$artifact:$VERSION
version=$VERSION
name=$dir
classname=$class
java.version=11
opensearch.version=$VERSION
extended.plugins=$extended
has.native.controller=false
PROPS
  if [ $# -gt 0 ]; then
    {
      echo "grant {"
      printf '  %s;\n' "$@"
      echo "};"
    } >"$out/plugin-security.policy"
  fi
}
module transport-netty4 transport-netty4-client org.opensearch.transport.Netty4Plugin "" \
  'permission java.io.FilePermission "/proc/sys/net/core/somaxconn", "read"' \
  'permission java.net.SocketPermission "*", "accept,connect"' \
  'permission java.lang.RuntimePermission "*", "setContextClassLoader"' \
  'permission java.lang.RuntimePermission "getClassLoader"' \
  'permission java.util.PropertyPermission "sun.nio.ch.bugLevel", "write"'
module lang-painless lang-painless org.opensearch.painless.PainlessPlugin "" \
  'permission java.lang.RuntimePermission "createClassLoader"' \
  'permission java.lang.RuntimePermission "getClassLoader"'
module analysis-common analysis-common org.opensearch.analysis.common.CommonAnalysisPlugin lang-painless
module mapper-extras mapper-extras-client org.opensearch.index.mapper.MapperExtrasPlugin ""
# The painless SPI is shared with the modules that extend lang-painless
# through its class loader, as in the distribution.
touch "$tmp/.complete"
rm -rf "$HOME_DIR"
mv "$tmp" "$HOME_DIR"
