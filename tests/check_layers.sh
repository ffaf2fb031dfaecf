#!/bin/sh
# Layers point one way: port/ and include/ include nothing that lives in
# boards/.  The one hook is the per-board options header
# (satchel_board_opts.h), which include/satchel/opt.h and port/lwip's
# lwipopts.h read lwIP-style from whatever board is on the include path.
set -eu
root=${1:-$(dirname "$0")/..}
hook="satchel_board_opts.h"
bad=""
# Header names that exist under boards/, other than the options hook.
names=$(cd "$root/boards" && find . -name '*.h' | sed 's|.*/||' | sort -u | grep -vx "$hook" || true)
n=0
for f in $(find "$root/port" "$root/include" -name '*.[ch]' | sort); do
    n=$((n + 1))
    incs=$(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]\([^">]*\)[">].*/\1/p' "$f")
    for i in $incs; do
        case "$i" in
        *boards/*) bad="$bad
  $f: #include \"$i\"" ;;
        esac
        base=${i##*/}
        [ "$base" = "$hook" ] && continue
        # A bare name that only a board provides (e.g. "slirp_link.h").
        if echo "$names" | grep -qx "$base" &&
           ! find "$root/port" "$root/include" "$root/core" -name "$base" | grep -q .; then
            bad="$bad
  $f: #include \"$i\" (a header from boards/)"
        fi
    done
done
if [ -n "$bad" ]; then
    echo "port/ or include/ includes from boards/:$bad"
    echo "check_layers: $n files, 1 failed"
    exit 1
fi
echo "check_layers: $n files, 0 from boards/ (hook $hook allowed)"
