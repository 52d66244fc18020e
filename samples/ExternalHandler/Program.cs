// External handler: this process's page faults are served by another process — the library's handler host,
// which the package copies beside this app (UffdNative.HandlerHost.dll) — so a crash or a stall of the
// handler cannot take the application down with it (how Firecracker's page-fault handler works).
//
//   1. start the handler host (HandlerHostProgram.StartInfo finds it beside this app) on a private socket;
//   2. map an empty region, register it for MISSING faults, and hand the uffd over (ExternalHandler.Connect)
//      with the policy to serve: missing-copy from a pattern source;
//   3. touch some pages: each first touch faults, the handler process copies that page in, the access goes on.
//
// Managed code never dereferences the registered region (a managed thread blocked in a uffd fault
// hangs the GC): every access goes through Accessor, which runs in the native shim.
using System.Diagnostics;
using UffdNative;
using UffdNative.Access;
using UffdNative.Memory;
using UffdNative.Serving.External;

const int Pages = 256;
const ulong Seed = 42;
ulong page = Mapping.PageSize;

// The host stops with this process (StartInfo passes --parent-pid) and, told so, removes the socket's directory.
string socket = HandlerHostProgram.NewSocketPath("sample");
using var host = Process.Start(HandlerHostProgram.StartInfo(["--socket", socket, "--remove-socket-directory"]))!;
// Ready once it says so (null: it exited, and said why on stderr).
string? line;
while ((line = host.StandardOutput.ReadLine()) is not null && !line.StartsWith("listening on ", StringComparison.Ordinal))
{
}
if (line is null)
{
    Console.Error.WriteLine($"external-handler: the handler host did not start: {host.StandardError.ReadToEnd()}");
    return 1;
}

using var memory = Mapping.Anonymous(Pages * page);
var uffd = Userfaultfd.Open(new UffdOpenOptions { RequiredFeatures = UffdFeatures.ThreadId });
uffd.Register(memory.Address, memory.Length, RegisterMode.Missing);
// From here the session owns the uffd: it closes it when it ends.
using var session = ExternalHandler.Connect(socket, uffd, new ExternalHandlerOptions
{
    Regions = [new HandoffRegion { BaseHostVirtAddr = memory.Address, Size = memory.Length, PageSize = page, Memory = "anon", Modes = ["missing"] }],
    Policies = [PolicySpec.Of("missing-copy", new SourceSpec { Kind = "pattern", Seed = Seed })],
});

// Touch every 4th page; each read faults once and is served by the other process.
int touched = 0, wrong = 0;
for (int i = 0; i < Pages; i += 4)
{
    if (Accessor.ReadU64(memory.PageAddress(i)) != Accessor.PatternWord(Seed, (ulong)i * page / 8))
        wrong++;
    touched++;
}
bool stopped = session.Stop();
var stats = session.Final?.Stats;
host.StandardOutput.ReadToEnd(); // its last lines (the session's end); then it exits, its one session served
host.WaitForExit();
Console.WriteLine($"external-handler: {Pages} pages registered, {touched} touched, {stats?.Faults} faults served by the handler host (pid {host.Id}, exit {host.ExitCode}), {stats?.PagesResolved} pages copied in");
bool ok = stopped && wrong == 0 && stats?.Faults == (ulong)touched && host.ExitCode == 0;
Console.WriteLine(ok
    ? $"external-handler: OK: every touched page holds the handler's content; the other {Pages - touched} pages were never read"
    : $"external-handler: FAILED: {wrong} pages with wrong content, session {session.State}, {stats?.Faults} faults for {touched} touched pages");
return ok ? 0 : 1;
