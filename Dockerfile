# uffdnative in a container: an SDK stage builds the CLI and its native shim (gcc + make, driven by
# MSBuild), a runtime stage runs it. Default command: `uffdnative probe`.
#
#   docker build -t uffdnative .
#   docker run --rm --cap-add SYS_PTRACE uffdnative            # probe
#   docker run --rm --cap-add SYS_PTRACE uffdnative probe --json
#
# A container gets userfaultfd only if it is let in: docs/containers.md lists the ways
# (--cap-add SYS_PTRACE, --device /dev/userfaultfd, a seccomp profile) and what `probe` reports in each.
# Base images are pinned to exact versions (the SDK and runtime this repository is built and tested with).

FROM mcr.microsoft.com/dotnet/sdk:10.0.401-noble AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc make libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN dotnet publish src/UffdNative.Cli/UffdNative.Cli.csproj -c Release -o /app

FROM mcr.microsoft.com/dotnet/runtime:10.0.12-noble
WORKDIR /app
COPY --from=build /app /app
# The apphost finds the runtime through DOTNET_ROOT (the image installs it in /usr/share/dotnet).
ENV DOTNET_ROOT=/usr/share/dotnet DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ENTRYPOINT ["/app/uffdnative"]
CMD ["probe"]
