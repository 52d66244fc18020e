namespace UffdNative.Harness.Tests.Conformance;

/// <summary>A C reproducer built and run as a kernel engineer would: <c>gcc -O2 -Wall -Werror</c>, then the program
/// on this kernel.</summary>
internal static class ReproBuild
{
    /// <summary>Compiles <paramref name="cFile"/> into an executable beside it (gcc must succeed), runs it and gives
    /// its exit code and output.</summary>
    public static (int Code, string Output) CompileAndRun(string cFile)
    {
        var dir = Path.GetDirectoryName(cFile)!;
        var exe = Path.Combine(dir, Path.GetFileNameWithoutExtension(cFile));
        var (cc, ccOut) = FuzzTests.Run("gcc", $"-O2 -Wall -Werror -o {exe} {cFile} -pthread", dir, 60_000);
        Assert.True(cc == 0, ccOut);
        return FuzzTests.Run(exe, "", dir, 60_000);
    }

    /// <summary>The reproducer of <paramref name="s"/> that expects <paramref name="trace"/>, compiled and run in a
    /// directory of its own (removed after).</summary>
    public static (int Code, string Output) Run(Scenario s, ScenarioTrace trace, KernelProfile profile)
    {
        using var dir = new TempDirectory("uffd-repro-run-");
        var c = Path.Combine(dir.Path, "repro.c");
        File.WriteAllText(c, Reproducer.CProgram(s, trace, profile, null));
        return CompileAndRun(c);
    }

    /// <summary>Asserts that <paramref name="program"/> compiles to an object without a warning.</summary>
    public static void AssertCompiles(string program, string context)
    {
        using var dir = new TempDirectory("uffd-repro-cc-");
        var c = Path.Combine(dir.Path, "repro.c");
        File.WriteAllText(c, program);
        var (cc, output) = FuzzTests.Run("gcc", $"-O2 -Wall -Werror -c -o {Path.Combine(dir.Path, "repro.o")} {c}", dir.Path, 60_000);
        Assert.True(cc == 0, $"{output}\n{context}");
    }
}
