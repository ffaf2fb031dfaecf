#!/bin/sh
# core/ must build for a Cortex-M with arm-none-eabi-gcc + newlib and include
# no OS, socket, lwIP or TLS header.
set -eu
root=${1:-$(dirname "$0")/..}
bad=$(grep -nE '#\s*include\s*<(sys/|unistd\.h|pthread\.h|netinet/|arpa/|netdb\.h|fcntl\.h|poll\.h|lwip/|mbedtls/|stdio\.h|time\.h)' "$root"/core/*.c "$root"/include/satchel/*.h || true)
if [ -n "$bad" ]; then
    echo "core/ includes platform headers:"; echo "$bad"; exit 1
fi
command -v arm-none-eabi-gcc >/dev/null || { echo "arm-none-eabi-gcc missing"; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# LMDB's header is the store's API on every target; give the cross compiler
# just that header, not the host's include tree.
mkdir -p "$out/inc"
cp /usr/include/lmdb.h "$out/inc/"
n=0
for f in "$root"/core/*.c; do
    arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=soft -Os -std=c11 \
        -Wall -Wextra -Werror -ffunction-sections -fdata-sections -fstack-usage \
        -I"$root/include" -I"$out/inc" -c "$f" -o "$out/$(basename "$f").o"
    n=$((n + 1))
done
arm-none-eabi-size "$out"/*.o | awk 'NR>1 {t+=$1; d+=$2; b+=$3} END {printf "core for Cortex-M4: text %d, data %d, bss %d bytes\n", t, d, b}'
# No writable static data: core/ keeps all state in the objects that own
# it, so two clients or stores never share anything and nothing is taken
# from a device's RAM before an object exists.
writable=$(arm-none-eabi-size "$out"/*.o | awk 'NR>1 && $2+$3>0 {printf "  %s: data %d, bss %d\n", $6, $2, $3}')
if [ -n "$writable" ]; then
    echo "core/ has writable static data (must be 0 bytes of data+bss):"
    echo "$writable"
    arm-none-eabi-nm -S "$out"/*.o | grep -E ' [bBdD] ' || true
    echo "core_cortex_m_build: $n compiled, 1 failed (data/bss)"
    exit 1
fi
# The BODYSTRUCTURE recursions fit the stack budget stated in opt.h.
set -- $(printf '#include "satchel/opt.h"\nSATCHEL_OPT_BODY_DEPTH SATCHEL_OPT_BODY_STACK SATCHEL_OPT_MAX_DEPTH\n' |
         arm-none-eabi-gcc -E -P -I"$root/include" -I"$out/inc" - | tail -1 | tr -d 'u()')
depth=$1 budget=$2 pdepth=$3
frame() { awk -F'\t' -v f="$2" '{split($1, a, ":"); n=a[4]; sub(/\..*/, "", n)} n == f {print $2; exit}' "$out/$1.su"; }
walk=$(frame body.c walk) leaf=$(frame body.c leaf) name=$(frame body.c set_name)
ser=$(frame fetch_map.c ser)
if [ -z "$walk" ] || [ -z "$leaf" ] || [ -z "$name" ] || [ -z "$ser" ]; then
    echo "cannot find the BODYSTRUCTURE walk's frames in the -fstack-usage output"; exit 1
fi
bwalk=$(( (depth + 1) * walk + leaf + name ))
bser=$(( (pdepth + 1) * ser ))
echo "BODYSTRUCTURE stack: walk $bwalk bytes ($((depth + 1)) x $walk + leaf $leaf + name $name), serializer $bser bytes ($((pdepth + 1)) x $ser); budget $budget"
if [ "$bwalk" -gt "$budget" ] || [ "$bser" -gt "$budget" ]; then
    echo "core_cortex_m_build: the BODYSTRUCTURE recursion exceeds SATCHEL_OPT_BODY_STACK"
    exit 1
fi
echo "core_cortex_m_build: $n passed, 0 failed"
