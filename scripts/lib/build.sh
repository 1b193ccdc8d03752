# The minik8s binary a script runs: $MINIK8S_BIN when given (the test
# runner passes its debug build), otherwise a release build of this
# checkout. Sets MINIK8S. Needs ROOT (the checkout).

# find_cargo: sets CARGO and CARGO_USER (the user whose toolchain it is;
# empty for the current one). Under sudo, PATH no longer has the
# invoking user's ~/.cargo/bin, so look there too.
find_cargo() {
  CARGO='' CARGO_USER=''
  if command -v cargo >/dev/null 2>&1; then
    CARGO=$(command -v cargo)
  elif [ -x "$HOME/.cargo/bin/cargo" ]; then
    CARGO=$HOME/.cargo/bin/cargo
  elif [ -n "${SUDO_USER:-}" ]; then
    local home
    home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    if [ -n "$home" ] && [ -x "$home/.cargo/bin/cargo" ]; then
      CARGO=$home/.cargo/bin/cargo CARGO_USER=$SUDO_USER
    fi
  fi
  [ -n "$CARGO" ]
}

# install_rust: a fresh machine has no Rust toolchain; rustup's installer
# (minimal profile) puts one in root's home, plus the C linker Rust needs.
install_rust() {
  echo "no Rust toolchain found: installing one with rustup (https://rustup.rs) ..."
  if ! command -v cc >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends build-essential >/dev/null
  fi
  command -v curl >/dev/null 2>&1 || {
    echo "curl is missing: run scripts/install-deps.sh first" >&2
    return 1
  }
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
  CARGO=$HOME/.cargo/bin/cargo CARGO_USER=''
}

# ensure_minik8s: sets MINIK8S to an executable minik8s.
ensure_minik8s() {
  if [ -n "${MINIK8S_BIN:-}" ]; then
    if [ ! -x "$MINIK8S_BIN" ]; then
      echo "MINIK8S_BIN=$MINIK8S_BIN is not an executable file" >&2
      return 1
    fi
    MINIK8S=$(readlink -f "$MINIK8S_BIN")
    return 0
  fi
  find_cargo || install_rust || return 1
  local target=${CARGO_TARGET_DIR:-$ROOT/target}
  echo "building minik8s (release) in $target ..."
  if [ -n "$CARGO_USER" ]; then
    # The invoking user's toolchain builds as that user, so the target
    # directory does not end up owned by root.
    sudo -u "$CARGO_USER" env "PATH=$(dirname "$CARGO"):$PATH" CARGO_TARGET_DIR="$target" \
      "$CARGO" build --release --bin minik8s --manifest-path "$ROOT/Cargo.toml"
  else
    CARGO_TARGET_DIR="$target" "$CARGO" build --release --bin minik8s --manifest-path "$ROOT/Cargo.toml"
  fi
  MINIK8S=$target/release/minik8s
  [ -x "$MINIK8S" ] || {
    echo "the build did not produce $MINIK8S" >&2
    return 1
  }
}
