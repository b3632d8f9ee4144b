#!/usr/bin/env bash
# Download the demo's raw material from Debian's packages into DIR, laid out as
# resources/build_demo.py --sources-from expects:
#   DIR/digits.png                    opencv-doc's sheet of handwritten digits (500 per class)
#   DIR/voices/<voice>/<digit>.wav    the spoken digits of each Asterisk prompt set
#   DIR/licences/<package>.copyright  every package's copyright file, shipped with the data
# Needs apt-get and dpkg (Debian or Ubuntu); nothing is installed, the packages are only unpacked.
set -euo pipefail
dest=${1:?usage: resources/fetch_demo_sources.sh DIR}
packages=(opencv-doc asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav
  asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav
  asterisk-prompt-it-menardi-wav)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
apt-get update -qq >/dev/null 2>&1 || echo "apt-get update failed; using the package lists there are" >&2
(cd "$scratch" && apt-get download "${packages[@]}" >/dev/null) ||
  { echo "could not download ${packages[*]}: is a Debian package source reachable?" >&2; exit 1; }
for deb in "$scratch"/*.deb; do dpkg-deb -x "$deb" "$scratch/tree"; done
mkdir -p "$dest/voices" "$dest/licences"
cp "$scratch/tree/usr/share/doc/opencv-doc/examples/data/digits.png" "$dest/"
for digits in "$scratch"/tree/usr/share/asterisk/sounds/*/digits; do
  voice=$(basename "$(dirname "$digits")")
  mkdir -p "$dest/voices/$voice"
  cp "$digits"/[0-9].wav "$dest/voices/$voice/"
done
for p in "${packages[@]}"; do cp "$scratch/tree/usr/share/doc/$p/copyright" "$dest/licences/$p.copyright"; done
echo "demo sources in $dest: $(ls "$dest/voices" | tr '\n' ' ')"
