using System.CommandLine;
using UffdNative.Cli.Commands;
using UffdNative.Cli.Infrastructure;

namespace UffdNative.Cli;

/// <summary>Every verb, one factory per file under Commands/, with its help examples.</summary>
public static class Verbs
{
    public static IEnumerable<Command> All()
    {
        yield return ProbeCommand.Create().WithExamples(
            "uffdnative probe",
            "uffdnative probe --json > probe-$(uname -r).json",
            "uffdnative probe --markdown -o probe.md",
            "uffdnative probe --rows <id>,<id>        (only these behaviour rows)",
            "sudo uffdnative probe                    (root: every open path and feature)");
        yield return CheckCommand.Create().WithExamples(
            "uffdnative check                               (every named scenario: model vs this kernel)",
            "uffdnative check --list",
            "uffdnative check --scenario <name> --memory shmem --verbose",
            "uffdnative check --profile 6.1 --json > check.json");
        yield return FuzzCommand.Create().WithExamples(
            "uffdnative fuzz --seed 1 --count 500",
            "uffdnative fuzz --seed 7 --seconds 60 --output repro/");
        yield return ReplayCommand.Create().WithExamples(
            "uffdnative replay uffdnative-repro/repro.json",
            "uffdnative replay repro.json --c repro-c/    (also the standalone C reproducer)");
        yield return CompareCommand.Create().WithExamples(
            "uffdnative compare host.json 6.1.json 6.12.json",
            "uffdnative compare --markdown -o matrix.md artifacts/kernel-matrix/*/probe.json");
        yield return BenchCommand.Create().WithExamples(
            "uffdnative bench                                   (every scenario, managed and native loops, 65536 pages)",
            "uffdnative bench --scenario wp/shmem --pages 4096,65536 --repeat 3",
            "uffdnative bench --loop managed --pin split --json > bench.json");
        yield return MatrixCommand.Create().WithExamples(
            "uffdnative matrix --out artifacts/kernel-matrix host 6.1 6.12",
            "uffdnative matrix 6.12.115+deb12-amd64 --step 'probe.json=uffdnative probe --json'");
        yield return BisectCommand.Create().WithExamples(
            "uffdnative bisect close-clears-wp --series 6.1          (which bookworm 6.1 build changed it)",
            "uffdnative bisect mremap-clears-wp --from 6.1.180-1 --to 6.1.192-3 --json",
            "uffdnative bisect <row> --kernels ~/k1/bzImage,~/k2/bzImage   (your own builds, oldest first)");
        yield return ServeCommand.Create().WithExamples(
            "uffdnative serve --socket /run/uffd.sock                        (one client session, its policies)",
            "uffdnative serve --socket /run/uffd.sock --sessions 0 --policy missing-copy --source file:guest.img");
        yield return SoakCommand.Create().WithExamples(
            "uffdnative soak --seconds 60",
            "uffdnative soak --seconds 600 --threads 8 --pages 65536 --json > soak.json");
    }
}
