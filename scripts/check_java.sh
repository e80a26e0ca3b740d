#!/usr/bin/env bash
# Fail early, with what to install, when Java >= 17 is missing (Spark 4 needs it).
set -u
required=17
java_bin="${JAVA_HOME:+$JAVA_HOME/bin/}java"
if ! command -v "$java_bin" >/dev/null 2>&1; then
  echo "ERROR: Java >= $required is required (Spark 4) but no 'java' was found." >&2
  echo "       Install a JDK, e.g. 'apt-get install openjdk-17-jdk-headless', and put it on PATH or set JAVA_HOME." >&2
  exit 1
fi
version=$("$java_bin" -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\)\(\.\([0-9]*\)\)\{0,1\}.*/\1 \3/p' | head -n 1)
major=${version%% *}
[ "$major" = "1" ] && major=${version##* }
if [ -z "$major" ] || [ "$major" -lt "$required" ]; then
  echo "ERROR: Java >= $required is required (Spark 4); found '$("$java_bin" -version 2>&1 | head -n 1)'." >&2
  echo "       Install a JDK >= $required, e.g. 'apt-get install openjdk-17-jdk-headless', and set JAVA_HOME." >&2
  exit 1
fi
