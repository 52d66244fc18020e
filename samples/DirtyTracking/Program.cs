// Dirty tracking without a fault handler (Linux 6.7+): which pages were written since last time?
// (what incremental snapshots, live migration's dirty log and Wine's GetWriteWatch need).
//
//   1. open the uffd with WP_ASYNC: the kernel resolves write faults itself, by clearing the page's
//      uffd-wp bit; no message is sent and no thread ever blocks;
//   2. write-protect the region (Arm);
//   3. each round, PAGEMAP_SCAN lists the pages whose wp bit is clear — the written ones — and
//      re-protects them in the same call (Collect).
//
// Managed code never dereferences the registered region: writes go through Accessor.
using UffdNative;
using UffdNative.Access;
using UffdNative.Memory;
using UffdNative.Serving.Policies;

const int Pages = 1024;
ulong page = Mapping.PageSize;

using var uffd = Userfaultfd.Open(new UffdOpenOptions
{
    RequiredFeatures = UffdFeatures.PageFaultFlagWp | UffdFeatures.WpAsync,
});
using var memory = Mapping.Anonymous(Pages * page);
uffd.Register(memory.Address, memory.Length, RegisterMode.WriteProtect);
using var tracker = new AsyncWriteTracking(uffd, memory.Address, memory.Length);
if (!tracker.Arm())
    throw new InvalidOperationException("an unread uffd event blocked write-protection");

int[][] rounds = [[3, 7, 8, 9, 100, 1023], [5], [], [0, 1, 2, 3, 512, 513]];
bool ok = true;
for (int r = 0; r < rounds.Length; r++)
{
    foreach (int i in rounds[r])
        Accessor.WriteU64(memory.PageAddress(i) + 64, (ulong)(r + 1)); // twice to page 3 over the rounds
    var dirty = new List<int>();
    foreach (var region in tracker.Collect())
        for (ulong a = region.Start; a < region.End; a += page)
            dirty.Add((int)((a - memory.Address) / page));
    bool same = dirty.SequenceEqual(rounds[r].Order());
    ok &= same;
    Console.WriteLine($"dirty-tracking: round {r + 1}: wrote [{string.Join(", ", rounds[r])}], PAGEMAP_SCAN found [{string.Join(", ", dirty)}] {(same ? "ok" : "MISMATCH")}");
}
Console.WriteLine(ok
    ? $"dirty-tracking: OK: every round found exactly the pages written since the previous one ({Pages} pages tracked, no fault handler)"
    : "dirty-tracking: FAILED");
return ok ? 0 : 1;
