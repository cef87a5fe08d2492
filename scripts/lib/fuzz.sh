# Builds the libFuzzer binaries with swiftc alone (no SwiftPM: a fuzzer links libFuzzer's main).
# Sourced by scripts/fuzz and scripts/fuzz-http.
#
# FUZZ_SANITIZERS (default "fuzzer,address") is passed to -sanitize=. AddressSanitizer stays on:
# the parsers index UnsafeBufferPointers and write through UnsafeMutablePointers (JSONParser,
# TokenMasker, TemplateMiner's masking, the HTTP parser), whose bounds are not checked in -O
# builds, and it cost ~2.5x on the decoder (3,700 against 9,100 inputs/s, same seed; measured
# 2026-12), ~4x on the HTTP parser. With it on, the Swift runtime's own crash backtracer is
# turned off (it trips ASan); libFuzzer prints the stack. "fuzzer" alone is the faster choice
# for long runs of code without unsafe pointers.
FAULTLINE_FUZZ_SANITIZERS="${FUZZ_SANITIZERS:-fuzzer,address}"

# Succeeds when binary $1 was built with the same sanitizers from the same source root ($2) and
# is newer than every later argument (files or folders).
faultline_fuzz_up_to_date() {
    local binary="$1" src="$2"
    shift 2
    [ -x "$binary" ] && [ "$(cat "$binary.built" 2>/dev/null)" = "$FAULTLINE_FUZZ_SANITIZERS $src" ] || return 1
    [ -z "$(find "$@" -newer "$binary" -print -quit)" ]
}

# swiftc, without the linker warnings every -sanitize=fuzzer link prints.
faultline_fuzz_swiftc() {
    local log
    log="$(mktemp)"
    # From the output folder: with -g, swiftc leaves module files in the current one.
    if ! (cd "$FAULTLINE_FUZZ_OUT" && swiftc -sanitize="$FAULTLINE_FUZZ_SANITIZERS" -parse-as-library -O -wmo -g "$@") >"$log" 2>&1; then
        grep -v 'Cannot export local symbol' "$log" >&2 || true
        rm -f "$log"
        return 1
    fi
    grep -v 'Cannot export local symbol' "$log" | grep -v '^[[:space:]]*$' >&2 || true
    rm -f "$log"
}

# faultline_build_http_fuzzer SOURCE_ROOT OUT: OUT/http-parser-fuzz from the HTTP parser's files,
# which use only the standard library, and Fuzz/HTTPParserFuzz.swift.
faultline_build_http_fuzzer() {
    local src="$1" out="$2"
    local files=("$src/Sources/HTTPServer/HTTPParser.swift" "$src/Sources/HTTPServer/HTTPHeaders.swift" "$src/Fuzz/HTTPParserFuzz.swift")
    mkdir -p "$out"
    FAULTLINE_FUZZ_OUT="$out"
    faultline_fuzz_up_to_date "$out/http-parser-fuzz" "$src" "${files[@]}" "${BASH_SOURCE[0]}" && return 0
    echo "==> building $out/http-parser-fuzz (-sanitize=$FAULTLINE_FUZZ_SANITIZERS)" >&2
    faultline_fuzz_swiftc -module-name HTTPParserFuzz "${files[@]}" -o "$out/http-parser-fuzz"
    echo "$FAULTLINE_FUZZ_SANITIZERS $src" >"$out/http-parser-fuzz.built"
}

# faultline_build_domain_fuzzer SOURCE_ROOT OUT: OUT/faultline-fuzz, every target of
# Fuzz/DomainFuzz.swift. Domain becomes a module of its own (as in the package, so Analysis's
# `import Domain` and its internal names stay as they are), linked as a static library into
# the module FaultlineFuzz of Analysis's files and the entry point. Analysis's C kernel
# (CVectorKernels) is compiled by clang with the same sanitizers and given a module map.
faultline_build_domain_fuzzer() {
    local src="$1" out="$2"
    mkdir -p "$out/domain" "$out/kernels"
    FAULTLINE_FUZZ_OUT="$out"
    faultline_fuzz_up_to_date "$out/faultline-fuzz" "$src" "$src/Sources/Domain" "$src/Sources/Analysis" \
        "$src/Sources/CVectorKernels" "$src/Fuzz/DomainFuzz.swift" "${BASH_SOURCE[0]}" && return 0
    echo "==> building $out/faultline-fuzz (-sanitize=$FAULTLINE_FUZZ_SANITIZERS)" >&2
    faultline_fuzz_swiftc -swift-version 6 -module-name Domain -emit-module -emit-module-path "$out/domain/Domain.swiftmodule" \
        -emit-library -static -o "$out/domain/libDomain.a" "$src"/Sources/Domain/*.swift
    local headers="$src/Sources/CVectorKernels/include"
    printf 'module CVectorKernels {\n    header "%s/CVectorKernels.h"\n    export *\n}\n' "$headers" >"$out/kernels/module.modulemap"
    clang -O3 -fsanitize="${FAULTLINE_FUZZ_SANITIZERS//fuzzer/fuzzer-no-link}" -I "$headers" \
        -c "$src/Sources/CVectorKernels/kernels.c" -o "$out/kernels/kernels.o"
    faultline_fuzz_swiftc -swift-version 6 -module-name FaultlineFuzz -I "$out/domain" -I "$out/kernels" \
        "$src"/Sources/Analysis/*.swift "$src/Fuzz/DomainFuzz.swift" "$out/domain/libDomain.a" "$out/kernels/kernels.o" \
        -o "$out/faultline-fuzz"
    echo "$FAULTLINE_FUZZ_SANITIZERS $src" >"$out/faultline-fuzz.built"
}
