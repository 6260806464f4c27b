#!/bin/sh
# Build the EPySeg ImageJ plug-in jar with the JDK only (no Maven).
#
#   sh epyseg_ij/java/build.sh OUT.jar [IJ_JAR_OR_IMAGEJ_DIR [JYTHON_JAR]]
#
# Compiles against Debian's /usr/share/java/ij.jar and jython.jar, or against the given ij.jar (or the ij*.jar and
# jython*.jar found in the given ImageJ/Fiji folder). Without a Jython jar the Jython interpreter shim is left out.
# javac and jar come from $JAVA_HOME/bin when JAVA_HOME is set. Paths may hold spaces and non-ASCII characters.
# The jar is written atomically (temporary file, then rename).
set -eu
out=${1:?usage: build.sh OUT.jar [IJ_JAR_OR_IMAGEJ_DIR [JYTHON_JAR]]}
here=$(cd "$(dirname "$0")" && pwd)
bin=${JAVA_HOME:+$JAVA_HOME/bin/}
ij=/usr/share/java/ij.jar
jython=/usr/share/java/jython.jar
if [ $# -ge 2 ] && [ -f "$2" ]; then
    ij=$2
    jython=${3-}
elif [ $# -ge 2 ]; then
    ij=$(find "$2" -maxdepth 2 \( -name 'ij.jar' -o -name 'ij-1*.jar' \) -print | head -n 1)
    jython=$(find "$2" -maxdepth 3 -name 'jython*.jar' -print | head -n 1)
    [ -n "$ij" ] || { echo "build.sh: no ij.jar in $2" >&2; exit 1; }
    [ -n "$jython" ] || jython=/usr/share/java/jython.jar
fi
[ -n "$jython" ] && [ -f "$jython" ] || jython=
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/classes" "$(dirname "$out")"
if [ -n "$jython" ]; then
    find "$here/src" -name '*.java' | sort | sed 's/.*/"&"/' > "$tmp/sources"
else
    find "$here/src" -name '*.java' ! -name 'Jython.java' | sort | sed 's/.*/"&"/' > "$tmp/sources"
fi
"${bin}javac" --release 8 -Xlint:-options -encoding UTF-8 -cp "$ij${jython:+:$jython}" -d "$tmp/classes" @"$tmp/sources"
cp "$here/plugins.config" "$tmp/classes/plugins.config"
cp "$here/pixi.toml" "$tmp/classes/epyseg/pixi.toml" # the Appose worker's environment, for Fiji plug-ins
"${bin}jar" cf "$tmp/EPySeg_Bridge.jar" -C "$tmp/classes" .
cp "$tmp/EPySeg_Bridge.jar" "$out.tmp.$$"
mv "$out.tmp.$$" "$out"
