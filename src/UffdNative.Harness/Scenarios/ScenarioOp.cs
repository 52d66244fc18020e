using System.Text.Json.Serialization;

namespace UffdNative.Harness.Scenarios;

/// <summary>
/// One step of a conformance scenario. The model and the real kernel both execute it; each produces an
/// <see cref="OpObservation"/>. Pages are indices into a mapping of the scenario (never addresses), so a
/// scenario means the same thing in the model, the executor, the JSON and the C reproducer.
/// "U" names a uffd of the scenario, "M" a mapping, "First"/"Count" a page range in it.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "op")]
[JsonDerivedType(typeof(ReadOp), "read")]
[JsonDerivedType(typeof(WriteOp), "write")]
[JsonDerivedType(typeof(RegisterOp), "register")]
[JsonDerivedType(typeof(UnregisterOp), "unregister")]
[JsonDerivedType(typeof(WriteProtectOp), "writeprotect")]
[JsonDerivedType(typeof(CopyOp), "copy")]
[JsonDerivedType(typeof(ZeroPageOp), "zeropage")]
[JsonDerivedType(typeof(ContinueOp), "continue")]
[JsonDerivedType(typeof(PoisonOp), "poison")]
[JsonDerivedType(typeof(MoveOp), "move")]
[JsonDerivedType(typeof(WakeOp), "wake")]
[JsonDerivedType(typeof(MadviseOp), "madvise")]
[JsonDerivedType(typeof(DrainOp), "drain")]
[JsonDerivedType(typeof(PunchHoleOp), "punch")]
[JsonDerivedType(typeof(TruncateOp), "truncate")]
[JsonDerivedType(typeof(PwriteOp), "pwrite")]
[JsonDerivedType(typeof(PreadOp), "pread")]
[JsonDerivedType(typeof(MprotectOp), "mprotect")]
[JsonDerivedType(typeof(MremapOp), "mremap")]
[JsonDerivedType(typeof(ForkOp), "fork")]
[JsonDerivedType(typeof(CloseOp), "close")]
[JsonDerivedType(typeof(ApiOp), "api")]
[JsonDerivedType(typeof(ScanOp), "scan")]
[JsonDerivedType(typeof(PinOp), "pin")]
[JsonDerivedType(typeof(UnpinOp), "unpin")]
[JsonDerivedType(typeof(HoldOp), "hold")]
[JsonDerivedType(typeof(SignalOp), "signal")]
[JsonDerivedType(typeof(CollapseOp), "collapse")]
public abstract record ScenarioOp
{
    /// <summary>A short, stable text form: "write m0+1 0x2a", "copy u0 m0+0..2 wp". Used in reports.</summary>
    public abstract string Describe();

    public override string ToString() => Describe();

    protected static string Range(string m, int first, int count) => count == 1 ? $"{m}+{first}" : $"{m}+{first}..{(long)first + count}";
}
