#!/usr/bin/env bash
# Holds userspace to its layer order (user/CMakeLists.txt):
#   common -> kernel -> accounting -> service -> push -> export -> watch -> fleet -> daemon -> app
#     -> collector
# 1. A source or header of a layer includes peakflow headers of its own or lower layers only.
# 2. No library needs a symbol that only a higher layer defines (nm over the built archives):
#    static archives alone would let such a call link whenever the higher object happened to
#    be pulled in already, so this is checked explicitly.
# Usage: check-layers.sh SOURCE_DIR LIB_DIR   (LIB_DIR holds libpf_<layer>.a)
set -euo pipefail
src=$1 libdir=$2
layers=(common kernel accounting service push export watch fleet daemon app collector)
declare -A rank
for i in "${!layers[@]}"; do rank[${layers[$i]}]=$i; done
fail=0

for layer in "${layers[@]}"; do
    for f in $(find "$src/user/$layer" "$src/include/peakflow/$layer" -name '*.cpp' -o -name '*.hpp' 2>/dev/null); do
        while IFS= read -r inc; do
            dep=${inc#peakflow/}
            dep=${dep%%/*}
            [[ -n "${rank[$dep]+x}" ]] || continue  # kern_user headers, version.hpp
            if ((rank[$dep] > rank[$layer])); then
                echo "layer violation: ${f#"$src"/} ($layer) includes $inc ($dep is above $layer)"
                fail=1
            fi
        done < <(sed -n 's/^#include "\(peakflow\/[^"]*\)".*/\1/p' "$f")
    done
done

declare -A defined_in
for layer in "${layers[@]}"; do
    a=$libdir/libpf_$layer.a
    [[ -f $a ]] || { echo "missing $a (build first)"; exit 2; }
    while read -r sym; do
        [[ -n "${defined_in[$sym]+x}" ]] || defined_in[$sym]=$layer
    done < <(nm -C --defined-only "$a" 2>/dev/null | awk '$2 ~ /^[TDBR]$/ {$1=""; $2=""; sub(/^  /, ""); print}')
done
for layer in "${layers[@]}"; do
    while read -r sym; do
        owner=${defined_in[$sym]-}
        [[ -n $owner ]] || continue  # from an external library
        if ((rank[$owner] > rank[$layer])); then
            echo "layer violation: libpf_$layer.a needs '$sym', defined in libpf_$owner.a"
            fail=1
        fi
    done < <(nm -C --undefined-only "$libdir/libpf_$layer.a" 2>/dev/null | awk '$1 == "U" {$1=""; sub(/^ /, ""); print}' | sort -u)
done

if ((fail)); then exit 1; fi
echo "layers: ${layers[*]}: no include or symbol goes up a layer"
