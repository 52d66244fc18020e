using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace UffdNative.Interop;

/// <summary>Finds libuffdshim.so: $UFFDNATIVE_SHIM; next to the app or under its
/// runtimes/linux-x64/native (a build or publish output: where MSBuild copies it, where NuGet puts a
/// package's native asset for a portable app, the tool package's layout); next to this assembly or
/// under the package root it was loaded from (lib/net10.0/../../runtimes/linux-x64/native: an
/// assembly used straight from the NuGet cache). Otherwise default probing (deps.json, a single-file
/// bundle's extraction directory), then DllNotFoundException naming the library.</summary>
internal static class ShimLibrary
{
    internal const string FileName = "libuffdshim.so";

    // A library must install its resolver before its first P/Invoke; a module initializer is the
    // one place that runs early enough without asking every caller to remember it.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register() =>
        NativeLibraryProbe.Register(typeof(ShimLibrary).Assembly, name => name == Shim.Library ? Candidates() : null);

    internal static IEnumerable<string> Candidates()
    {
        // $UFFDNATIVE_SHIM, the app directory (where MSBuild copies the shim, the root of a tool package)
        // and its runtimes/linux-x64/native.
        foreach (var c in NativeLibraryProbe.AppCandidates("UFFDNATIVE_SHIM", FileName))
            yield return c;
        // This assembly's directory, and the package it came from (empty Location: single-file).
        var own = OwnDirectory();
        if (!string.IsNullOrEmpty(own))
        {
            yield return Path.Combine(own, FileName);
            yield return Path.Combine(own, NativeAssetDir, FileName);
            yield return Path.GetFullPath(Path.Combine(own, "..", "..", NativeAssetDir, FileName));
        }
    }

    // Empty in a single-file bundle or NativeAOT: the candidates are then skipped (the app directory
    // and default probing cover those).
    [UnconditionalSuppressMessage("SingleFile", "IL3000", Justification = "an empty Location is handled")]
    private static string? OwnDirectory() => Path.GetDirectoryName(typeof(ShimLibrary).Assembly.Location);

    private static string NativeAssetDir => NativeLibraryProbe.NativeAssetDir;
}
