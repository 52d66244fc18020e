namespace UffdNative.Harness.Tests.Probing;

/// <summary>The probe's register-mask rows against the reference's values (§1.4 "Measured values").</summary>
internal static class RegisterMaskAsserts
{
    /// <summary>For every memory type and mode: the row is as-expected and its ioctl mask (hex) or errno is the one given.</summary>
    public static void Expect(ProbeReport report, string[] memories, params (string Mode, string Expected)[] masks)
    {
        foreach (var memory in memories)
            foreach (var (mode, expected) in masks)
            {
                var m = report.RegisterMasks.Single(x => x.Memory == memory && x.Mode == mode);
                Assert.Equal("as-expected", m.Verdict);
                Assert.Equal(expected, m.Errno == "OK" ? $"0x{m.Ioctls:x}" : m.Errno);
            }
    }
}
