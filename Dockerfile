# The skybook image: one binary that every workload runs (`serve`, `worker`, `migrate`, `auth-proxy`), as the
# manifests under deploy/ say. How to build, push and roll it out: docs/deploy.md. The paths, the base and the
# entrypoint are checked by crates/skybook/tests/it/deploy.rs (no container engine runs where the tests do).
#
#   docker build -t registry.example.com/skybook:1.0.0 .

# The toolchain is the workspace's rust-version (Cargo.toml; the deploy test keeps the two equal). Bookworm,
# because the runtime below is Debian 12: a binary linked against a newer glibc than the runtime's does not
# start there.
FROM rust:1.95-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The dependency recipe: every manifest and the lockfile, nothing else of the sources.
FROM chef AS planner
COPY Cargo.toml Cargo.lock ./
COPY crates crates
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# The dependencies in a layer of their own: rebuilt when Cargo.toml or Cargo.lock change, not on every change
# to skybook's sources (the release profile's fat LTO makes the final link the long part either way).
RUN cargo chef cook --release --locked -p skybook --recipe-path recipe.json
COPY Cargo.toml Cargo.lock ./
COPY crates crates
# --strip-debug drops the DWARF line tables (about 90 MB to about 21 MB) but keeps the symbol table, so a crash
# report's backtrace still names its functions; the panic's own file and line are in the binary regardless.
RUN cargo build --release --locked -p skybook \
    && objcopy --strip-debug target/release/skybook /skybook

# The runtime: distroless cc, the smallest Debian base with what the binary links dynamically — glibc (libc,
# libm) and libgcc_s (unwinding for panics) — and nothing else: no shell, no package manager. TLS is rustls
# with the Mozilla roots compiled in (webpki-roots; no rustls-native-certs, no OpenSSL), so the base's CA
# bundle is not used; the test the_binary_needs_only_what_the_runtime_base_ships asserts the list. `static`
# lacks glibc; `base` lacks libgcc_s.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=builder /skybook /skybook
# The `nonroot` user of distroless, by number: Kubernetes can verify `runAsNonRoot` only for a numeric user.
USER 65532:65532
# 8080 the site and API, 9090 `/metrics` (`serve --metrics-listen`), 9000 the auth proxy (its config file).
EXPOSE 8080 9090 9000
ENTRYPOINT ["/skybook"]
