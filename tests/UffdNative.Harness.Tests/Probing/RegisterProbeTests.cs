namespace UffdNative.Harness.Tests.Probing;

/// <summary>The hugetlbfs register rows when the huge page pool has no free page for them: the host's pool is
/// shared with every process, so a pool found free before the rows may be taken by the time a row maps its page.
/// That is not this kernel's registration: the row is not determined, naming the pool, never flagged.</summary>
public class RegisterProbeTests
{
    [Fact]
    public void AHugetlbRowWithoutAFreeHugePageIsNotDeterminedNamingThePool()
    {
        var hp = EnvironmentProbe.HugePages();
        using var lab = new Lab();
        var row = RegisterProbe.One(lab, "hugetlb-shared", RegisterMode.Missing);
        if (hp.SizeKb == 0)
        {
            // No hugetlbfs at all: memfd_create(MFD_HUGETLB) itself fails, an error of this kernel's configuration.
            Assert.Equal(Verdict.Error.Id(), row.Verdict);
            return;
        }
        if (hp.Free == 0)
        {
            Assert.Equal(Verdict.Undetermined.Id(), row.Verdict);
            Assert.Equal("ENOMEM", row.Errno);
            Assert.StartsWith("no free huge page when the row ran (mmap", row.Explanation, StringComparison.Ordinal);
            Assert.EndsWith($"now 0 free of {hp.Total}): the pool changed under the probe", row.Explanation, StringComparison.Ordinal);
        }
        else
        {
            // A free page: the row registers and is judged (reference §1.4: hugetlb MISSING has no ZEROPAGE).
            Assert.Equal("OK", row.Errno);
            Assert.NotEqual(Verdict.Undetermined.Id(), row.Verdict);
        }
    }
}
