# Installs what building and testing Faultline needs, when it is missing. Sourced by scripts/*.

FAULTLINE_APT_PACKAGES=(pkg-config librdkafka-dev libpq-dev libcurl4-openssl-dev libssl-dev postgresql kcat curl python3 tinyproxy)

faultline_ensure_deps() {
    local missing=()
    for package in "${FAULTLINE_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "==> installing Debian packages: ${missing[*]}"
        local sudo=()
        if [ "$(id -u)" -ne 0 ]; then
            if command -v sudo >/dev/null; then sudo=(sudo); else
                echo "error: missing packages ${missing[*]}; install them as root: apt-get install ${missing[*]}" >&2
                return 1
            fi
        fi
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    # Installing the postgresql package may start Debian's own cluster on 5432: harmless,
    # Faultline's private servers use other ports.
    if ! command -v swift >/dev/null; then
        echo "error: the Swift toolchain (6.0 or later) is not on PATH; see https://www.swift.org/install/linux/" >&2
        return 1
    fi
}
