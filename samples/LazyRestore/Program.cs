// Lazy restore: a process's memory comes back from a snapshot file page by page, only when touched
// (how CRIU's lazy pages, Firecracker's snapshot resume and QEMU's postcopy work).
//
//   1. map an empty region and register it for MISSING faults;
//   2. serve those faults with a FaultServer whose MissingCopy policy reads each page from the file;
//   3. touch some pages: each first touch faults, the server copies that page in, the access goes on.
//
// Managed code never dereferences the registered region (a managed thread blocked in a uffd fault
// hangs the GC): every access goes through Accessor, which runs in the native shim.
using UffdNative;
using UffdNative.Access;
using UffdNative.Memory;
using UffdNative.Serving;
using UffdNative.Serving.Policies;

const int Pages = 256;
ulong page = Mapping.PageSize;

// The "snapshot": a file whose page i holds (i + 1) * 0x0101010101010101 in every word.
string snapshot = Path.Combine(Path.GetTempPath(), $"lazy-restore-{Environment.ProcessId}.img");
var bytes = new byte[Pages * (int)page];
for (int i = 0; i < Pages; i++)
    Array.Fill(bytes, (byte)(i + 1), i * (int)page, (int)page);
File.WriteAllBytes(snapshot, bytes);

try
{
    using var uffd = Userfaultfd.Open(); // MISSING faults on anonymous memory need no extra feature
    using var memory = Mapping.Anonymous(Pages * page);
    uffd.Register(memory.Address, memory.Length, RegisterMode.Missing);

    using var file = File.OpenHandle(snapshot);
    using var source = PageSource.FromFile(file);
    using var server = new FaultServer(uffd, new FaultServerOptions
    {
        Policies = [new MissingCopy(source)],
        Ranges = [new ServedRange(memory.Address, memory.Length)], // source offset 0 = the region's first page
    });
    server.Start();

    // Touch every 4th page; each read faults once and is served from the file.
    int touched = 0, wrong = 0;
    for (int i = 0; i < Pages; i += 4)
    {
        ulong expected = (ulong)(i + 1) * 0x0101010101010101UL;
        if (Accessor.ReadU64(memory.PageAddress(i) + 8 * (ulong)(i % 512)) != expected)
            wrong++;
        touched++;
    }
    // A second read of a restored page is an ordinary memory access: no fault.
    Accessor.ReadU64(memory.PageAddress(0));

    server.Stop();
    var stats = server.Statistics;
    Console.WriteLine($"lazy-restore: {Pages} pages registered, {touched} touched, {stats.MissingFaults} faults served from {Path.GetFileName(snapshot)}, {stats.PagesResolved} pages copied in");
    Console.WriteLine(wrong == 0 && stats.MissingFaults == (ulong)touched
        ? $"lazy-restore: OK: every touched page holds its snapshot content; the other {Pages - touched} pages were never read"
        : $"lazy-restore: FAILED: {wrong} pages with wrong content, {stats.MissingFaults} faults for {touched} touched pages");
    return wrong == 0 && stats.MissingFaults == (ulong)touched ? 0 : 1;
}
finally
{
    File.Delete(snapshot);
}
