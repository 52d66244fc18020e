using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace UffdNative.Interop;

/// <summary>Finds libuffdshim.so: $UFFDNATIVE_SHIM, next to the assembly, next to the app, or under
/// runtimes/linux-x64/native (the .NET tool package layout).</summary>
internal static class ShimLibrary
{
    internal const string FileName = "libuffdshim.so";

    // A library must install its resolver before its first P/Invoke; a module initializer is the
    // one place that runs early enough without asking every caller to remember it.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register() => NativeLibrary.SetDllImportResolver(typeof(ShimLibrary).Assembly, Resolve);

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != Shim.Library)
            return 0;
        foreach (var candidate in Candidates())
            if (File.Exists(candidate) && NativeLibrary.TryLoad(candidate, out var h))
                return h;
        return 0; // default probing, then DllNotFoundException naming the library
    }

    internal static IEnumerable<string> Candidates()
    {
        var env = Environment.GetEnvironmentVariable("UFFDNATIVE_SHIM");
        if (!string.IsNullOrEmpty(env))
            yield return env;
        // The app directory: where MSBuild copies the shim, and the root of a tool package.
        var dir = AppContext.BaseDirectory;
        yield return Path.Combine(dir, FileName);
        yield return Path.Combine(dir, "runtimes", "linux-x64", "native", FileName);
    }
}
