# uffdnative in a container: an SDK stage builds the CLI and its native shim (gcc + make, driven by
# MSBuild), a runtime stage runs it. Default command: `uffdnative probe`.
#
#   docker build -t uffdnative .
#   docker run --rm --device /dev/userfaultfd uffdnative            # probe
#   docker run --rm --device /dev/userfaultfd uffdnative probe --json
#
# A container gets userfaultfd only if it is let in: docs/containers.md lists the ways (the device,
# a seccomp profile that allows userfaultfd, privileges; --cap-add SYS_PTRACE alone is not one) and
# what `probe` reports in each, as scripts/container-test.sh observes it.
# Base images are pinned to exact versions (the SDK and runtime this repository is built and tested with).
# They are build arguments so that scripts/container-test.sh can build this same file on a machine that
# cannot reach the registry, from stand-ins it makes locally (--build-arg SDK_IMAGE=... RUNTIME_IMAGE=...);
# the defaults are what everyone else, GitHub's runners included, builds from.
ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0.401-noble
ARG RUNTIME_IMAGE=mcr.microsoft.com/dotnet/runtime:10.0.12-noble

FROM ${SDK_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc make libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN dotnet publish src/UffdNative.Cli/UffdNative.Cli.csproj -c Release -o /app

FROM ${RUNTIME_IMAGE}
WORKDIR /app
COPY --from=build /app /app
# The apphost finds the runtime through DOTNET_ROOT (the image installs it in /usr/share/dotnet).
ENV DOTNET_ROOT=/usr/share/dotnet DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
ENTRYPOINT ["/app/uffdnative"]
CMD ["probe"]
