#!/usr/bin/env bash
# Installs xgrad's Debian build dependencies with apt-get, only when one is missing; extra package
# names on the command line join the list (scripts/fuzz.sh adds clang).
set -euo pipefail
pkgs=(cmake g++ make libxtensor-dev libxtensor-blas-dev libopenblas-dev doctest-dev libfmt-dev
      nlohmann-json3-dev libcli11-dev libstb-dev libdnnl-dev openmpi-bin libopenmpi-dev "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
