using System.Runtime.CompilerServices;

namespace UffdNative.Harness.Native;

/// <summary>Finds libuffdharness.so: $UFFDNATIVE_HARNESS_LIB, next to the app, or under
/// runtimes/linux-x64/native (the tool package's layout) — where MSBuild and the publish steps put
/// it beside libuffdshim.so, which it links against ($ORIGIN).</summary>
internal static class HarnessLibrary
{
    internal const string FileName = "libuffdharness.so";
    /// <summary>The shim, imported by the harness for its layout table only (HarnessLayout).</summary>
    internal const string ShimImport = "uffdshim";

#pragma warning disable CA2255 // the resolver must be in place before the first P/Invoke
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register() =>
        NativeLibraryProbe.Register(typeof(HarnessLibrary).Assembly, name => name switch
        {
            HarnessNative.Library => Candidates(),
            ShimImport => Candidates().Select(c => Path.Combine(Path.GetDirectoryName(c)!, "libuffdshim.so")),
            _ => null,
        });

    internal static IEnumerable<string> Candidates() => NativeLibraryProbe.AppCandidates("UFFDNATIVE_HARNESS_LIB", FileName);
}
