#!/bin/sh
# Build the EPySeg ImageJ plug-in jar with the JDK only (no Maven).
#
#   sh epyseg_ij/java/build.sh OUT.jar [IMAGEJ_OR_FIJI_DIR]
#
# Compiles against Debian's /usr/share/java/ij.jar and jython.jar, or against the ij*.jar and jython*.jar found in
# the given ImageJ/Fiji folder. The jar is written atomically (temporary file, then rename).
set -eu
out=${1:?usage: build.sh OUT.jar [IMAGEJ_OR_FIJI_DIR]}
here=$(cd "$(dirname "$0")" && pwd)
ij=/usr/share/java/ij.jar
jython=/usr/share/java/jython.jar
if [ $# -ge 2 ]; then
    ij=$(find "$2" -maxdepth 2 \( -name 'ij.jar' -o -name 'ij-1*.jar' \) -print | head -n 1)
    jython=$(find "$2" -maxdepth 3 -name 'jython*.jar' -print | head -n 1)
    [ -n "$ij" ] || { echo "build.sh: no ij.jar in $2" >&2; exit 1; }
    [ -n "$jython" ] || jython=/usr/share/java/jython.jar
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/classes" "$(dirname "$out")"
javac --release 8 -Xlint:-options -encoding UTF-8 -cp "$ij:$jython" -d "$tmp/classes" \
    $(find "$here/src" -name '*.java' | sort)
cp "$here/plugins.config" "$tmp/classes/plugins.config"
jar cf "$tmp/EPySeg_Bridge.jar" -C "$tmp/classes" .
cp "$tmp/EPySeg_Bridge.jar" "$out.tmp.$$"
mv "$out.tmp.$$" "$out"
