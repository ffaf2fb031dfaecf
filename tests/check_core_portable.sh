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
        -Wall -Wextra -Werror -ffunction-sections -fdata-sections \
        -I"$root/include" -I"$out/inc" -c "$f" -o "$out/$(basename "$f").o"
    n=$((n + 1))
done
arm-none-eabi-size "$out"/*.o | awk 'NR>1 {t+=$1; d+=$2; b+=$3} END {printf "core for Cortex-M4: text %d, data %d, bss %d bytes\n", t, d, b}'
echo "core_cortex_m_build: $n passed, 0 failed"
