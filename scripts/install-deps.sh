#!/usr/bin/env bash
# Installs what wgjit needs to build, test and run its demo on a fresh Debian
# machine: Debian packages that are missing, then the npm packages from the
# lock file. Idempotent and quiet when everything is already there.
set -euo pipefail

DEBIAN_PACKAGES=(
  clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config make g++ python3
  # The addon's Noise responder: X25519 and ChaCha20-Poly1305, BLAKE2s.
  libsodium-dev libb2-dev
  iproute2 iputils-ping redis-server wireguard-go wireguard-tools tcpdump
  # Tests: REST calls from inside a namespace, a connection cut by a drop rule.
  curl nftables
  # The fleet testbed (harness/testbed/fleet.ts): BIRD carries the gateways'
  # peer routes to the core router over BGP.
  bird2
  # The real-kernel test VM (scripts/vm/): qemu under TCG booting Debian's
  # 6.1 kernel (it ships wireguard.ko) with a busybox initramfs.
  qemu-system-x86 linux-image-amd64 busybox-static kmod cpio
)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "wgjit: missing Debian packages: ${missing[*]}; run 'make deps' as root" >&2
    exit 1
  fi
  echo "wgjit: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# redis-server's package starts a system instance; wgjit's tests and demo run
# their own on private sockets, so the system one is left as Debian set it.
# The same for bird2 where systemd runs: the fleet testbed starts one BIRD per
# namespace, each with its own control socket.

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "wgjit: installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
