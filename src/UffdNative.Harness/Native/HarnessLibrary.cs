using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace UffdNative.Harness.Native;

/// <summary>Finds libuffdharness.so: $UFFDNATIVE_HARNESS_LIB, next to the app, or under
/// runtimes/linux-x64/native (the tool package's layout) — where MSBuild and the publish steps put
/// it beside libuffdshim.so, which it links against ($ORIGIN).</summary>
internal static class HarnessLibrary
{
    internal const string FileName = "libuffdharness.so";

#pragma warning disable CA2255 // the resolver must be in place before the first P/Invoke
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register() => NativeLibrary.SetDllImportResolver(typeof(HarnessLibrary).Assembly, Resolve);

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != HarnessNative.Library)
            return 0;
        foreach (var candidate in Candidates())
            if (File.Exists(candidate) && NativeLibrary.TryLoad(candidate, out var h))
                return h;
        return 0; // default probing (a single-file bundle's extraction directory), then DllNotFoundException
    }

    internal static IEnumerable<string> Candidates()
    {
        var env = Environment.GetEnvironmentVariable("UFFDNATIVE_HARNESS_LIB");
        if (!string.IsNullOrEmpty(env))
            yield return env;
        var dir = AppContext.BaseDirectory;
        yield return Path.Combine(dir, FileName);
        yield return Path.Combine(dir, "runtimes", "linux-x64", "native", FileName);
    }
}
