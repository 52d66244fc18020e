namespace UffdNative.Harness.Tests.Formats;

/// <summary>
/// probe where no userfaultfd can be opened — created for real: a seccomp filter refusing the syscall
/// and no /dev/userfaultfd, in the launched process tree only (native/tools/uffd_seccomp_launch.c).
/// Every format reports the absence the same way: exit 3, and UFFDIO_API as an error that says why.
/// </summary>
public sealed class NoUserfaultfdFormatTests
{
    private static CliResult Probe(params string[] args) =>
        CliRunner.RunIn(null, [CliRunner.Launcher, "--deny-userfaultfd", "--hide-device", "--"], ["probe", .. args]);

    [Fact]
    public void KtapSaysUffdioApiCannotBeAskedAndSkipsTheMasks()
    {
        var r = Probe("--format", "ktap");
        Assert.True(r.ExitCode == 3, r.ToString());
        var root = KtapParser.Parse(r.Stdout).Root;
        var api = root.Tests[0];
        Assert.Equal(("uffdio-api", false, "ERROR"), (api.Description, api.Ok, api.Directive));
        Assert.StartsWith("cannot be asked: ", api.Data, StringComparison.Ordinal);
        Assert.Equal(("register-masks", true, "SKIP"), (root.Tests[1].Description, root.Tests[1].Ok, root.Tests[1].Directive));
        Assert.True(root.Leaves().Count(t => !t.Ok) >= 1);
    }

    [Fact]
    public void JUnitIsValidWithUffdioApiAsAnError()
    {
        var r = Probe("--format", "junit");
        Assert.True(r.ExitCode == 3, r.ToString());
        Assert.Empty(JUnitTests.Problems(r.Stdout));
        var api = XDocument.Parse(r.Stdout).Root!.Elements("testsuite").Single(s => (string)s.Attribute("name")! == "uffdnative.probe.features").Element("testcase")!;
        Assert.StartsWith("UFFDIO_API cannot be asked: ", (string)api.Element("error")!.Attribute("message")!, StringComparison.Ordinal);
    }

    [Fact]
    public void JsonMatchesTheSchema()
    {
        var r = Probe("--json");
        Assert.True(r.ExitCode == 3, r.ToString());
        Assert.Empty(JsonSchemaTests.Problems("probe", r.Stdout));
    }
}
