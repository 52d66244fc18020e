// Live snapshot of a memfd (QEMU's background snapshot): freeze a consistent image of memory while
// its owner keeps writing, without stopping the owner.
//
//   1. write-protect the whole region (WP registration of shmem needs Linux 5.19+);
//   2. the owner writes on: the first write to each page faults, and the WpSnapshot policy copies the
//      page's content into a SnapshotStore before un-protecting it, so the write goes on;
//   3. the snapshot is the store's copy of every page written during it, and the (still protected,
//      so unchanged) live page of every other.
//
// Managed code never dereferences the registered memfd mapping: the owner writes through Accessor
// (the native shim), and the snapshot of unwritten pages is read the same way. The SnapshotStore is
// ordinary memory, which managed code may read.
using System.Runtime.InteropServices;
using UffdNative;
using UffdNative.Access;
using UffdNative.Memory;
using UffdNative.Serving;
using UffdNative.Serving.Policies;

const int Pages = 256;
ulong page = Mapping.PageSize;
static ulong Before(int i) => 0x5350000000000000UL | (uint)i; // content at snapshot time
static ulong After(int i) => 0xAF70000000000000UL | (uint)i;  // what the owner writes during it

using var uffd = Userfaultfd.Open(new UffdOpenOptions
{
    RequiredFeatures = UffdFeatures.PageFaultFlagWp | UffdFeatures.WpHugetlbfsShmem,
});
using var memfd = MemfdFile.Create("guest-ram", Pages * (long)page);
using var ram = memfd.MapShared();
for (int i = 0; i < Pages; i++)
    Accessor.WriteU64(ram.PageAddress(i), Before(i)); // the owner's memory before the snapshot

// Start the snapshot: protect everything, serve WP faults by copying out, then un-protecting.
uffd.Register(ram.Address, ram.Length, RegisterMode.WriteProtect);
uffd.WriteProtect(ram.Address, ram.Length, protect: true);
using var store = new SnapshotStore(ram.Length);
using var server = new FaultServer(uffd, new FaultServerOptions
{
    Policies = [new WpSnapshot(store)],
    Ranges = [new ServedRange(ram.Address, ram.Length)],
});
server.Start();

// The owner keeps running: 2000 writes to pages of its choice, from its own thread.
var written = new HashSet<int>();
var owner = Task.Run(() =>
{
    var rng = new Random(42);
    for (int n = 0; n < 2000; n++)
    {
        int i = rng.Next(Pages) / 2; // the lower half of memory is busier
        Accessor.WriteU64(ram.PageAddress(i), After(i));
        written.Add(i);
    }
});
owner.Wait();

// The snapshot: the store's copy of each page written during it, the live page of every other.
int good = 0, fromStore = 0;
for (int i = 0; i < Pages; i++)
{
    ulong offset = (ulong)i * page;
    ulong v;
    if (store.IsSaved(offset))
    {
        v = (ulong)Marshal.ReadInt64(store.AddressOf(offset)); // ordinary memory
        fromStore++;
    }
    else
    {
        v = Accessor.ReadU64(ram.PageAddress(i)); // still protected: never changed
    }
    if (v == Before(i))
        good++;
}
int liveChanged = 0;
foreach (int i in written)
    if (Accessor.ReadU64(ram.PageAddress(i)) == After(i))
        liveChanged++;

server.Stop(); // closes the uffd: the protection ends with the snapshot
var stats = server.Statistics;
Console.WriteLine($"live-snapshot: {Pages} pages, the owner wrote 2000 times to {written.Count} pages during the snapshot; {stats.WriteProtectFaults} write faults, {stats.SnapshotPages} pages copied out before their first write");
bool ok = good == Pages && fromStore == written.Count && (long)stats.SnapshotPages == written.Count && liveChanged == written.Count;
Console.WriteLine(ok
    ? $"live-snapshot: OK: all {Pages} snapshot pages hold their content from snapshot time ({fromStore} from the store, {Pages - fromStore} live); memory holds the owner's {liveChanged} new pages"
    : $"live-snapshot: FAILED: {good}/{Pages} snapshot pages right, {fromStore} from the store for {written.Count} written, {liveChanged} live pages changed");
return ok ? 0 : 1;
