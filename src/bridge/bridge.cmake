# The Rust bridge (src/bridge, docs/bridge.md): cargo builds a static library that
# commentd_lib links. Included from the top-level CMakeLists.txt after commentd_lib exists.
#
# cargo: found on PATH, else in $CARGO_HOME/bin or ~/.cargo/bin (rustup's default, which a
# non-login shell may not have on PATH). Override with -DCARGO=/path/to/cargo.
# COMMENTD_CARGO_TARGET_DIR: outside the clone by default, so every clone (CI builds a fresh
# one) reuses the compiled dependencies; the registry cache stays in ~/.cargo.
find_program(CARGO cargo HINTS "$ENV{CARGO_HOME}/bin" "$ENV{HOME}/.cargo/bin" REQUIRED)
set(COMMENTD_CARGO_TARGET_DIR "$ENV{HOME}/.cache/commentd/cargo-target" CACHE PATH
    "cargo target directory for the bridge crate (shared between clones)")

set(BRIDGE_DIR ${CMAKE_CURRENT_LIST_DIR})
set(BRIDGE_LIB ${CMAKE_BINARY_DIR}/bridge/libcommentd_bridge.a)
# Always runs: cargo's own no-op check takes well under a second, and cargo_build.sh copies
# the library only when it changed, so commentd relinks only then.
add_custom_target(bridge_cargo
  COMMAND ${BRIDGE_DIR}/cargo_build.sh ${CARGO} ${COMMENTD_CARGO_TARGET_DIR} ${BRIDGE_LIB}
  BYPRODUCTS ${BRIDGE_LIB}
  WORKING_DIRECTORY ${BRIDGE_DIR}
  COMMENT "cargo build --release --locked (src/bridge)"
  USES_TERMINAL)

add_library(commentd_bridge STATIC IMPORTED GLOBAL)
set_target_properties(commentd_bridge PROPERTIES IMPORTED_LOCATION ${BRIDGE_LIB})
add_dependencies(commentd_bridge bridge_cargo)
# What `rustc --print native-static-libs` lists for this crate; ssl/crypto for pulsar's
# native-tls and the CQL driver's TLS (openssl-010).
target_link_libraries(commentd_bridge INTERFACE OpenSSL::SSL OpenSSL::Crypto Threads::Threads dl m rt util gcc_s)
add_dependencies(commentd_lib bridge_cargo)
target_link_libraries(commentd_lib PUBLIC commentd_bridge)
# The crate compiles its own lz4 and zstd (C); keep them out of the dynamic symbol table so
# RocksDB's shared liblz4/libzstd are not interposed by our copies.
target_link_options(commentd_lib INTERFACE "LINKER:--exclude-libs,libcommentd_bridge.a")
