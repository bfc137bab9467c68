#!/usr/bin/env bash
# Fetch the photographs among Debian's wallpaper, game and documentation packages (listed in
# allweather_ros/data/sources.py: DEBIAN_PHOTOS, licences in DEBIAN_LICENCES) into
# DEST/<package>/<path>, the layout allweather_ros.data.sources.debian_scenes() reads. Nothing is
# installed: each .deb is fetched with `apt-get download` and unpacked in a temporary folder, and
# only the photos are kept. A path through a Qt resource file (<file>.rcc/<member>, GCompris)
# is taken out of that file. Run `apt-get update` once first on a new machine.
#
# usage: tools/data_fetch_debian_photos.sh [DEST]   (default: $ALLWEATHER_SCENES or
#        ~/.cache/allweather_ros/scenes); PYTHON selects the interpreter (default: .venv/bin/python)
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-${ALLWEATHER_SCENES:-$HOME/.cache/allweather_ros/scenes}}"
python="${PYTHON:-$here/.venv/bin/python}"
[ -x "$python" ] || python=python3

list="$(cd "$here" && "$python" -m allweather_ros.data.sources)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

missing=0
for package in $(cut -d' ' -f1 <<<"$list" | sort -u); do
    (cd "$work" && apt-get download "$package" >/dev/null)
    mkdir -p "$work/$package"
    dpkg-deb -x "$work/${package}"_*.deb "$work/$package"
    while read -r pkg relative; do
        [ "$pkg" = "$package" ] || continue
        if [ -f "$work/$package/$relative" ]; then
            install -D -m 0644 "$work/$package/$relative" "$dest/$package/$relative"
        elif [[ "$relative" == *.rcc/* && -f "$work/$package/${relative%%.rcc/*}.rcc" ]]; then
            # a picture packed in a Qt resource file (GCompris): take the member out of it
            "$python" "$here/allweather_ros/data/qt_rcc.py" \
                "$work/$package/${relative%%.rcc/*}.rcc" "${relative#*.rcc/}" "$dest/$package/$relative"
        else
            echo "warning: $package no longer ships $relative" >&2
            missing=$((missing + 1))
        fi
    done <<<"$list"
    rm -rf "$work/$package" "$work/${package}"_*.deb
done

echo "$(wc -l <<<"$list") photos listed, $missing missing, in $dest"
