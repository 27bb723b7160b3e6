# syntax=docker/dockerfile:1
# One build, three small images: `docker build --target idgen|shortener|redirect -t snowlink-<target> .`
# Dependencies are compiled in their own layer (cargo-chef), so a source change rebuilds only the workspace crates.
# Runtime: distroless cc (glibc, CA certificates, no shell), as its non-root user (65532).
# Not built in this repository's CI (no container engine there); see README "Running on Kubernetes".

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.71
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin idgen --bin shortener --bin redirect

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
USER 65532:65532
ENV LOG_FORMAT=json

FROM runtime AS idgen
COPY --from=builder /src/target/release/idgen /usr/local/bin/idgen
ENV IDGEN_LISTEN=0.0.0.0:8082 IDGEN_ADMIN_LISTEN=0.0.0.0:9082
EXPOSE 8082 9082
ENTRYPOINT ["/usr/local/bin/idgen"]

FROM runtime AS shortener
COPY --from=builder /src/target/release/shortener /usr/local/bin/shortener
ENV SHORTENER_LISTEN=0.0.0.0:8080 SHORTENER_ADMIN_LISTEN=0.0.0.0:9080
EXPOSE 8080 9080
ENTRYPOINT ["/usr/local/bin/shortener"]
CMD ["serve"]

FROM runtime AS redirect
COPY --from=builder /src/target/release/redirect /usr/local/bin/redirect
ENV REDIRECT_LISTEN=0.0.0.0:8081 REDIRECT_ADMIN_LISTEN=0.0.0.0:9081
EXPOSE 8081 9081
ENTRYPOINT ["/usr/local/bin/redirect"]
