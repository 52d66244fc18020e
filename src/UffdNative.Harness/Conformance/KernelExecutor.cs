using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using System.Runtime.InteropServices;
using Tmds.Linux;
using NativeAccess = UffdNative.Access.Op;
using UffdNative.Uapi;
using UffdNative.PageMap;
using UffdNative.Harness.Native;
using UffdNative.Harness.Probing;
using UffdNative.Harness.Scenarios;
using UffdNative.Messages;
using static Tmds.Linux.LibC;
using E = UffdNative.Errno;

namespace UffdNative.Harness.Conformance;

public sealed record ExecutorOptions
{
    /// <summary>How long one op may take before the run is declared hung ("timeout").</summary>
    public int OpTimeoutMs { get; init; } = 3000;

    /// <summary>Replaces the handler's policies (<see cref="ScenarioHandler"/>) for each uffd: a test's
    /// deliberately wrong policy must make <c>check</c> diverge. Not a switch of any verb.</summary>
    internal Func<IReadOnlyList<FaultPolicy>, IReadOnlyList<FaultPolicy>>? ReplacePolicies { get; init; }

    /// <summary>Replaces the ops a fork child runs (a test's child that parks forever must end "blocked").
    /// Not a switch of any verb.</summary>
    internal Func<ChildOp[], ChildOp[]>? ReplaceChildOps { get; init; }

    /// <summary>Where the executor logs each step (Debug); null: the binding's <see cref="UffdLogging"/>.
    /// The kernel calls themselves are logged by the binding (category UffdNative.Kernel).</summary>
    public ILogger? Logger { get; init; }
}

internal static partial class ExecutorLog
{
    [LoggerMessage(EventId = 4000, Level = LogLevel.Debug, Message = "{Scenario}: setup -> {Result}")]
    public static partial void Setup(ILogger logger, string scenario, string result);

    [LoggerMessage(EventId = 4001, Level = LogLevel.Debug, Message = "{Scenario}: op {Index} {Op} -> {Result}{Messages}")]
    public static partial void Op(ILogger logger, string scenario, int index, string op, string result, string messages);
}

/// <summary>
/// Runs a scenario on the real kernel and records the same canonical observations the model produces.
/// Faulting accesses run on native worker threads (never managed code, ARCHITECTURE.md rule 2);
/// event-producing calls (madvise, mremap, fork) run on helper threads while this thread steps one
/// <see cref="FaultServer"/> per uffd (<see cref="FaultServer.ResolvePending"/>), which resolves the faults
/// with the shipping policies of the scenario's declared handler (<see cref="ScenarioHandler"/>) and reports
/// every ioctl it issued: the observations are what the engine did. SIGBUS-prone accesses only happen in fork
/// children (<see cref="ScenarioValidator"/>). Every wait is bounded: a hang becomes "timeout", after which
/// every uffd is closed (the kernel then wakes and resolves every blocked thread) and the run stops.
/// </summary>
public sealed unsafe partial class KernelExecutor(ExecutorOptions? options = null)
{
    /// <summary>The least room a mapping's slot gets (scenario mappings of 4 KiB pages fit; hugetlb ones get theirs).</summary>
    private const ulong MinSlotSize = 4UL << 20;
    private const int MaxMremaps = 8;
    public ExecutorOptions Options { get; } = options ?? new ExecutorOptions();

    /// <summary>The address room of one mapping slot: the largest mapping of the scenario, 2 MiB aligned (hugetlb
    /// mappings must be), at least <see cref="MinSlotSize"/>. The C reproducer lays its mappings out the same.</summary>
    internal static ulong SlotBytes(Scenario sc)
    {
        ulong largest = sc.Mappings.Count == 0 ? 0 : (ulong)sc.Mappings.Max(m => m.Pages) * MemoryTypes.PageBytes(sc.Memory);
        return Math.Max(MinSlotSize, (largest + (2UL << 20) - 1) & ~((2UL << 20) - 1));
    }

    public ScenarioTrace Run(Scenario scenario)
    {
        if (ScenarioValidator.Validate(scenario) is { } why)
            return new ScenarioTrace { Error = $"invalid scenario: {why}" };
        using var run = new Execution(scenario, Options);
        return run.Execute();
    }

    private sealed class UffdEntry
    {
        public required string Name;
        public required Userfaultfd Fd;
        public required UffdFeatures Features;
        /// <summary>The stepped server of this uffd (null when the API handshake failed: nothing to serve).</summary>
        public FaultServer? Server;
        public bool Closed;

        public void Close()
        {
            Server?.Dispose(); // a stepped server's Stop closes its uffd (CloseUffdOnStop)
            Fd.Dispose();
            Closed = true;
        }
    }

    private sealed class Helper
    {
        private readonly Thread thread;
        public volatile bool Done;
        public int Result;
        public Exception? Error;
        public object? Payload;

        public Helper(string name, Func<Helper, int> body)
        {
            thread = new Thread(() =>
            {
                try { Result = body(this); }
                catch (Exception e) { Error = e; }
                finally { Done = true; }
            }) { IsBackground = true, Name = name };
        }

        public Helper Start()
        {
            thread.Start();
            return this;
        }

        public bool Join(int ms) => thread.Join(ms);
    }

    private sealed class MapEntry
    {
        public required MappingSpec Spec;
        /// <summary>The bytes of one scenario page: 4 KiB, or 2 MiB in a hugetlb scenario.</summary>
        public required ulong Page;
        public ulong Address;
        public ulong Len => (ulong)Spec.Pages * Page;
    }

    private sealed partial class Execution : IDisposable
    {
        private readonly Scenario sc;
        private readonly ExecutorOptions opt;
        /// <summary>The bytes of one scenario page: 4 KiB, or one 2 MiB huge page in a hugetlb scenario (reference
        /// §3.11): every range, offset and pagemap entry of the scenario is counted in these.</summary>
        private readonly ulong Page;
        private readonly bool hugetlb;
        private readonly ulong slotSize;
        private readonly List<MapEntry> maps = [];
        private readonly List<UffdEntry> uffds = [];
        private readonly List<UffdEntry> childUffds = [];
        /// <summary>During a fork op: where the child's mremap steps put its mappings (the parent's stay where they are).</summary>
        private readonly List<(MapEntry Map, ulong Start)> childPlaces = [];
        /// <summary>During a fork op: the child, which after each madvise step waits for the handler's UNREGISTER on REMOVE
        /// (HandlerPolicy.UnregisterOnRemove) before going on.</summary>
        private ForkedChild? runningChild;
        /// <summary>Releases owed to the child before its handle reached this thread (it can reach its madvise first).</summary>
        private int owedReleases;
        private readonly Lock runningChildGate = new();
        private readonly List<Helper> held = [];
        private readonly List<Helper> helpers = [];
        private readonly List<NativeWorker> workers = [];
        /// <summary>Every io_uring pin a helper took (released at teardown even when its op hung); the held ones by range.</summary>
        private readonly System.Collections.Concurrent.ConcurrentBag<IoUringPin> allPins = [];
        private readonly Dictionary<(string M, int First, int Count), IoUringPin> pins = [];
        private MemfdFile? memfd;
        private PageMapReader? pagemap;
        private ulong reservation, reservationLen, slotBase;
        /// <summary>Ranges of the reservation a successful mremap vacated: free address space from then on,
        /// which the process may reuse (a new thread's stack lands there), so teardown must not unmap them.</summary>
        private readonly List<(ulong Start, ulong Len)> vacated = [];
        private int nextSlot;
        private List<string> msgs = [];
        private int faultsThisOp;
        private bool blocked, timedOut;
        // During a fork op: its bound on silence (0: no fork running) and when the child or a uffd last showed progress.
        private long forkSilenceMs, forkProgressAt;
        private void* srcBuf;
        private ulong srcBufLen;

        private readonly ILogger log;

        public Execution(Scenario sc, ExecutorOptions opt)
        {
            this.sc = sc;
            this.opt = opt;
            log = opt.Logger ?? UffdLogging.LoggerFactory.CreateLogger<KernelExecutor>();
            hugetlb = MemoryTypes.IsHugetlb(sc.Memory);
            Page = MemoryTypes.PageBytes(sc.Memory);
            slotSize = SlotBytes(sc);
        }

        public ScenarioTrace Execute()
        {
            var obs = new List<OpObservation>();
            string setup;
            try
            {
                setup = Setup();
            }
            catch (UffdException e)
            {
                return new ScenarioTrace { Error = $"setup: {e.Message}" };
            }
            obs.Add(new OpObservation { Index = -1, Op = "setup", Result = setup, PageMap = PageMaps() });
            bool debug = log.IsEnabled(LogLevel.Debug);
            if (debug)
                ExecutorLog.Setup(log, sc.Name, setup);
            for (int i = 0; i < sc.Ops.Count; i++)
            {
                var op = sc.Ops[i];
                msgs = [];
                faultsThisOp = 0;
                var child = new List<string>();
                string result;
                // A hugetlb op zeroes or copies 2 MiB per page (a fork child's CoW too): slow under TCG, so its bound is 3×.
                long bound = (op is ForkOp ? opt.OpTimeoutMs * 2 : opt.OpTimeoutMs) * (hugetlb ? 3L : 1L);
                long deadline = Environment.TickCount64 + bound;
                // An op after a hold reports, after its own result, what the held access is doing (HoldOp).
                bool reportHeld = heldAccess is not null && op is not HoldOp;
                try
                {
                    result = Exec(op, child, deadline);
                    if (reportHeld && heldAccess is not null)
                        result += $" [held: {SettleHeld(deadline)}]";
                }
                catch (TimeoutException)
                {
                    timedOut = true;
                    result = "timeout";
                }
                if (blocked || timedOut)
                {
                    Abort();
                    obs.Add(new OpObservation { Index = i, Op = op.Describe(), Result = blocked ? "blocked" : "timeout", Messages = msgs, Child = child });
                    if (debug)
                        ExecutorLog.Op(log, sc.Name, i, op.Describe(), blocked ? "blocked" : "timeout", "");
                    break;
                }
                obs.Add(new OpObservation { Index = i, Op = op.Describe(), Result = result, Messages = msgs, Child = child, PageMap = PageMaps() });
                if (debug)
                    ExecutorLog.Op(log, sc.Name, i, op.Describe(), result, msgs.Count == 0 ? "" : "; messages: " + string.Join(", ", msgs));
            }
            return new ScenarioTrace { Observations = obs };
        }

        // ---- setup ------------------------------------------------------------------------------

        private string Setup()
        {
            int slots = sc.Mappings.Count + MaxMremaps;
            reservationLen = (ulong)(slots + 1) * slotSize;
            void* r = mmap(null, (size_t)reservationLen, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (r == MAP_FAILED)
                throw new UffdException("mmap(reservation)", Marshal.GetLastPInvokeError(), "", "");
            reservation = (ulong)r;
            // Mappings start 2 MiB aligned: the page index is the PTE index (fault-around windows, §3.1).
            slotBase = (reservation + (2UL << 20) - 1) & ~((2UL << 20) - 1);

            bool needFile = sc.FilePages > 0 || sc.Mappings.Any(m => m.Kind != MapKind.Anon) || sc.Ops.Any(o => o is PunchHoleOp or TruncateOp or PwriteOp or PreadOp);
            if (needFile)
                memfd = MemoryTypes.CreateMemfd("uffd-conformance", (long)sc.FilePages * (long)Page, hugetlb);

            foreach (var spec in sc.Mappings)
            {
                ulong addr = SlotAddress(nextSlot++);
                void* p = spec.Kind == MapKind.Anon
                    ? mmap((void*)addr, (size_t)((ulong)spec.Pages * Page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0)
                    : mmap((void*)addr, (size_t)((ulong)spec.Pages * Page), PROT_READ | PROT_WRITE, (spec.Kind == MapKind.Shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED, memfd!.Fd, (long)((ulong)spec.FileOffset * Page));
                if (p == MAP_FAILED)
                    throw new UffdException($"mmap({spec.Name})", Marshal.GetLastPInvokeError(), "", "");
                // Keep THP out of the way unless the scenario asks for it (model pages are 4 KiB); hugetlb has no THP.
                if (!hugetlb || spec.Kind == MapKind.Anon)
                    madvise(p, (size_t)((ulong)spec.Pages * Page), spec.HugePage ? (int)Advice.HugePage : (int)Advice.NoHugePage);
                maps.Add(new MapEntry { Spec = spec, Page = Page, Address = addr });
            }
            pagemap = PageMapReader.Open();

            var parts = new List<string>();
            foreach (var u in sc.Uffds)
            {
                int flags = Uffd.OCloexec | Uffd.ONonblock;
                // The open policy of every verb; a user-mode-only uffd in place of a full one only when the
                // runner found that nothing in the scenario faults in kernel mode (ConformanceEnvironment.Cannot).
                int fd = OpenPolicy.Here.OpenRaw(u.UserModeOnly, flags, allowUserModeOnly: true);
                if (fd < 0)
                    throw new UffdException("open userfaultfd", -fd, "", "");
                var uffd = Userfaultfd.Adopt(fd, u.Features);
                var api = new UffdioApi { Api = (ulong)Uffd.Api, Features = (ulong)u.Features };
                int rc = uffd.TryApi(ref api);
                uffds.Add(new UffdEntry { Name = u.Name, Fd = uffd, Features = u.Features, Server = rc == 0 ? NewServer(uffd) : null });
                parts.Add($"{u.Name}={(rc == 0 ? "ok" : E.Name(-rc))}");
            }
            return parts.Count == 0 ? "ok" : string.Join(" ", parts);
        }

        private ulong SlotAddress(int slot) => slotBase + (ulong)slot * slotSize;

        private FaultServer NewServer(Userfaultfd uffd)
        {
            var policies = ScenarioHandler.Policies(sc, name => (M(name).Address, M(name).Len), Page);
            if (opt.ReplacePolicies is { } replace)
                policies = replace(policies);
            return new FaultServer(uffd, new FaultServerOptions
            {
                Policies = policies,
                Ranges = [.. maps.Select((m, i) => ScenarioHandler.Range(sc, i, m.Address, m.Len))],
                OnFork = ForkBehavior.Serve, // the child's server is stepped here too (Resolution.ForkChild)
                MaxMessagesPerRead = 16,
                CloseUffdOnStop = true,
                ThreadName = "conformance",
                // At Debug only: at Information each scenario's server start and end would drown fuzz's and check's progress lines.
                Logger = log.IsEnabled(LogLevel.Debug) ? null : NullLogger.Instance,
            });
        }

        private MapEntry M(string name) => maps.First(m => m.Spec.Name == name);
        private UffdEntry U(string name) => uffds.First(u => u.Name == name);
        private ulong Addr(string m, int page) => M(m).Address + (ulong)page * Page;

        /// <summary>count pages of mapping m from page first.</summary>
        private UffdioRange Pages(string m, int first, int count) => new(Addr(m, first), (ulong)count * Page);

        private Dictionary<string, string> PageMaps()
        {
            var d = new Dictionary<string, string>();
            foreach (var m in maps)
            {
                // A hugetlb page has one entry per 4 KiB; its base's stands for it (pagemap_hugetlb_range gives all the same bits).
                var entries = hugetlb
                    ? Enumerable.Range(0, m.Spec.Pages).Select(p => pagemap!.Read(m.Address + (ulong)p * Page, 1)[0]).ToArray()
                    : pagemap!.Read(m.Address, m.Spec.Pages);
                d[m.Spec.Name] = new string(entries.Select(e => PageChars.FromRaw(e.Raw)).ToArray());
            }
            return d;
        }

        // ---- ops -------------------------------------------------------------------------------------

        private string Exec(ScenarioOp op, List<string> child, long deadline) => op switch
        {
            ReadOp r => Access(NativeAccess.Read64(Addr(r.M, r.Page)), kernel: false, deadline),
            WriteOp { Mode: AccessMode.Kernel } w => Access(NativeAccess.KernelWrite(Addr(w.M, w.Page), 8, w.Tag), kernel: true, deadline),
            WriteOp w => Access(NativeAccess.Write64(Addr(w.M, w.Page), w.Tag), kernel: false, deadline),
            RegisterOp r => Register(r),
            UnregisterOp u => Errno(RangeIoctl(U(u.U), u.M, u.First, u.Count, unregister: true)),
            WriteProtectOp w => WriteProtect(U(w.U), w.M, w.First, w.Count, w.Protect, w.DontWake).Text,
            CopyOp c => Copy(U(c.U), c.M, c.First, c.Count, c.Tag, c.Wp, c.DontWake).Text,
            ZeroPageOp z => ZeroPage(U(z.U), z.M, z.First, z.Count).Text,
            ContinueOp c => Continue(U(c.U), c.M, c.First, c.Count, c.Wp).Text,
            PoisonOp p => Poison(U(p.U), p.M, p.First, p.Count).Text,
            MoveOp mv => Move(U(mv.U), mv.M, mv.First, mv.Src, mv.SrcFirst, mv.Count, mv.AllowSrcHoles).Text,
            WakeOp w => Errno(RangeIoctl(U(w.U), w.M, w.First, w.Count, unregister: false)),
            MadviseOp m => Madvise(m, deadline),
            DrainOp => Drain(deadline),
            CollapseOp c => Collapse(c),
            PunchHoleOp p => Errno(memfd!.TryPunchHole((long)((ulong)p.First * Page), (long)((ulong)p.Count * Page))),
            TruncateOp t => Errno(ftruncate(memfd!.Fd, (long)((ulong)t.Pages * Page)) < 0 ? -Marshal.GetLastPInvokeError() : 0),
            PwriteOp w => Pwrite(w),
            PreadOp r => $"ok value=0x{memfd!.ReadU64((long)((ulong)r.Page * Page)):x}",
            MprotectOp m => Mprotect(m),
            MremapOp m => Mremap(m, deadline),
            ForkOp f => Fork(f, child, deadline),
            CloseOp c => Close(U(c.U)),
            ApiOp a => Api(a),
            ScanOp s => Scan(s),
            PinOp p => Pin(p, deadline),
            UnpinOp u => Unpin(u),
            HoldOp h => Hold(h, deadline),
            SignalOp => SignalHeld(),
            _ => throw new InvalidOperationException($"op {op.GetType().Name}"),
        };

        private static string Errno(int rc) => rc == 0 ? "ok" : E.Name(-rc);

        private string Access(AccessOp op, bool kernel, long deadline)
        {
            var w = new NativeWorker([op]);
            workers.Add(w);
            Serve(() => w.Join(0), deadline, w.CompletionFd);
            if (blocked)
                return "blocked";
            return AccessText(w.Results[0], kernel);
        }

        private static string AccessText(AccessResult r, bool kernel)
        {
            if (kernel)
                return r.Ret >= 0 ? $"ok bytes={r.Ret}" : E.Name((int)-r.Ret);
            return r.Ret < 0 ? E.Name((int)-r.Ret) : $"ok value=0x{r.Value:x}";
        }

        private string Register(RegisterOp r)
        {
            int rc = U(r.U).Fd.TryRegister(Addr(r.M, r.First), (ulong)r.Count * Page, r.Modes, out var ioctls);
            if (rc < 0)
                return E.Name(-rc);
            return r.ObserveIoctls ? $"ok ioctls=0x{(ulong)ioctls:x}" : "ok";
        }

        private int RangeIoctl(UffdEntry u, string m, int first, int count, bool unregister)
        {
            var range = Pages(m, first, count);
            return unregister ? u.Fd.TryUnregister(ref range) : u.Fd.TryWake(ref range);
        }

        private readonly record struct Io(int Rc, long? Field = null)
        {
            public string Text => (Rc == 0 ? "ok" : E.Name(-Rc)) + (Field is { } f ? $" field={f.ToString(CultureInfo.InvariantCulture)}" : "");
        }

        private Io WriteProtect(UffdEntry u, string m, int first, int count, bool protect, bool dontWake)
        {
            var w = new UffdioWriteprotect
            {
                Range = Pages(m, first, count),
                Mode = (ulong)((protect ? WriteProtectMode.WriteProtect : 0) | (dontWake ? WriteProtectMode.DontWake : 0)),
            };
            return new Io(u.Fd.TryWriteProtect(ref w));
        }

        private void* Source(int count, ulong tag)
        {
            ulong len = (ulong)count * Page;
            if (srcBufLen < len)
            {
                if (srcBuf != null)
                    NativeMemory.AlignedFree(srcBuf);
                srcBuf = NativeMemory.AlignedAlloc((nuint)len, (nuint)Page);
                srcBufLen = len;
            }
            // An ordinary, never-registered buffer: the page's first word is the tag, the rest zero.
            NativeMemory.Clear(srcBuf, (nuint)len);
            for (int i = 0; i < count; i++)
                *(ulong*)((byte*)srcBuf + (ulong)i * Page) = tag;
            return srcBuf;
        }

        private delegate int FillIoctl<T>(ref T arg) where T : struct;

        /// <summary>A fill ioctl (COPY, ZEROPAGE, CONTINUE, POISON, MOVE) whose result field the caller preset to 1, so a
        /// field the kernel left alone shows: its rc, and the field after the call.</summary>
        private static Io Fill<T>(FillIoctl<T> ioctl, T arg, Func<T, long> field) where T : struct
        {
            int rc = ioctl(ref arg);
            return new Io(rc, field(arg));
        }

        private Io Copy(UffdEntry u, string m, int first, int count, ulong tag, bool wp, bool dontWake = false) =>
            Fill(u.Fd.TryCopy, new UffdioCopy { Dst = Addr(m, first), Src = (ulong)Source(count, tag), Len = (ulong)count * Page, Mode = (wp ? (ulong)CopyMode.WriteProtect : 0) | (dontWake ? (ulong)CopyMode.DontWake : 0), Copy = 1 }, c => c.Copy);

        private Io ZeroPage(UffdEntry u, string m, int first, int count) =>
            Fill(u.Fd.TryZeroPage, new UffdioZeropage { Range = Pages(m, first, count), Zeropage = 1 }, z => z.Zeropage);

        private Io Continue(UffdEntry u, string m, int first, int count, bool wp) =>
            Fill(u.Fd.TryContinue, new UffdioContinue { Range = Pages(m, first, count), Mode = wp ? (ulong)ContinueMode.WriteProtect : 0, Mapped = 1 }, c => c.Mapped);

        private Io Poison(UffdEntry u, string m, int first, int count) =>
            Fill(u.Fd.TryPoison, new UffdioPoison { Range = Pages(m, first, count), Updated = 1 }, c => c.Updated);

        private Io Move(UffdEntry u, string m, int first, string src, int srcFirst, int count, bool holes) =>
            Fill(u.Fd.TryMove, new UffdioMove { Dst = Addr(m, first), Src = Addr(src, srcFirst), Len = (ulong)count * Page, Mode = holes ? (ulong)MoveMode.AllowSrcHoles : 0, Move = 1 }, mv => mv.Move);

        private string Pwrite(PwriteOp w)
        {
            ulong tag = w.Tag;
            return Errno(memfd!.TryWrite((long)((ulong)w.Page * Page), new ReadOnlySpan<byte>(&tag, 8)));
        }

        private string Mprotect(MprotectOp op)
        {
            void* a = (void*)Addr(op.M, op.First);
            var len = (size_t)((ulong)op.Count * Page);
            if (mprotect(a, len, PROT_READ) < 0)
                return E.Name(Marshal.GetLastPInvokeError());
            if (mprotect(a, len, PROT_READ | PROT_WRITE) < 0)
                return E.Name(Marshal.GetLastPInvokeError());
            return "ok";
        }

        private static int AdviceNumber(MadviseAdvice a) => a switch { MadviseAdvice.DontNeed => (int)Advice.DontNeed, MadviseAdvice.Remove => (int)Advice.Remove, _ => (int)Advice.PageOut };

        private string Madvise(MadviseOp op, long deadline)
        {
            ulong addr = Addr(op.M, op.First), len = (ulong)op.Count * Page;
            int advice = AdviceNumber(op.Advice);
            // With EVENT_REMOVE the call blocks until the REMOVE event is read: never on this thread (§1.6).
            var h = new Helper("madvise", _ => madvise((void*)addr, (size_t)len, advice) < 0 ? -Marshal.GetLastPInvokeError() : 0).Start();
            helpers.Add(h);
            if (op.Hold)
            {
                // Wait until the event is queued (a uffd is readable) or the call finished without one.
                while (!h.Done && !AnyReadable(10))
                    if (Environment.TickCount64 > deadline)
                        throw new TimeoutException();
                if (!h.Done)
                {
                    held.Add(h);
                    return "held";
                }
            }
            Serve(() => h.Done, deadline);
            if (blocked)
                return "blocked";
            return Errno(h.Result);
        }

        private string Collapse(CollapseOp op)
        {
            var m = M(op.M);
            // Scenario mappings are MADV_NOHUGEPAGE (4 KiB model pages), which MADV_COLLAPSE refuses (EINVAL): MADV_HUGEPAGE
            // lifts it first. MADV_COLLAPSE raises no uffd event (the alias is not registered): called on this thread.
            if (madvise((void*)m.Address, (size_t)m.Len, (int)Advice.HugePage) < 0 || madvise((void*)m.Address, (size_t)m.Len, MadvCollapse) < 0)
                return E.Name(Marshal.GetLastPInvokeError());
            return $"ok ShmemPmdMapped={FactDetectors.SmapsField(m.Address, "ShmemPmdMapped:").ToString(CultureInfo.InvariantCulture)}kB";
        }

        private const int MadvCollapse = 25;

        private string Drain(long deadline)
        {
            Serve(() => held.All(h => h.Done), deadline);
            var results = held.Select(h => $"madvise={Errno(h.Result)}").ToList();
            held.Clear();
            return results.Count == 0 ? "ok" : "ok " + string.Join(" ", results);
        }

        private string Mremap(MremapOp op, long deadline)
        {
            var m = M(op.M);
            ulong target = SlotAddress(nextSlot++);
            ulong old = m.Address, len = m.Len;
            var h = new Helper("mremap", _ =>
            {
                void* p = mremap((void*)old, (size_t)len, (size_t)len, 1 /* MREMAP_MAYMOVE */ | 2 /* MREMAP_FIXED */, (void*)target);
                return p == MAP_FAILED ? -Marshal.GetLastPInvokeError() : 0;
            }).Start();
            helpers.Add(h);
            Serve(() => h.Done, deadline);
            if (blocked)
                return "blocked";
            if (h.Result == 0)
            {
                vacated.Add((m.Address, m.Len));
                m.Address = target;
                Moved(m);
            }
            return Errno(h.Result);
        }

        /// <summary>An io_uring long-term pin (IoUringPin). It faults the pages in as kernel-mode writes, which may
        /// raise uffd faults this thread serves: a helper thread pins.</summary>
        private string Pin(PinOp op, long deadline)
        {
            ulong addr = Addr(op.M, op.First), len = (ulong)op.Count * Page;
            IoUringPin? got = null;
            var h = new Helper("pin", self =>
            {
                got = IoUringPin.TryPin(addr, len, out int err, out _);
                if (got is null)
                    return -err;
                allPins.Add(got);
                return 0;
            }).Start();
            helpers.Add(h);
            Serve(() => h.Done, deadline);
            if (blocked)
                return "blocked";
            if (h.Error is not null)
                return $"pin failed: {h.Error.Message}";
            if (got is not null)
                pins[(op.M, op.First, op.Count)] = got;
            return Errno(h.Result);
        }

        private string Unpin(UnpinOp op)
        {
            if (!pins.Remove((op.M, op.First, op.Count), out var pin))
                return "ENOENT";
            return Errno(pin.Unpin());
        }

        private string Fork(ForkOp op, List<string> childObs, long deadline)
        {
            var ops = new List<ChildOp>();
            // Where each mapping is in the child: its mremap steps move it to free slots of the child's copy of the
            // reservation (after the parent's, which stay free in the child), and Locate names a fault there.
            var childAt = maps.ToDictionary(m => m.Spec.Name, m => m.Address);
            int childSlot = nextSlot;
            ulong ChildAddr(string m, int page) => childAt[m] + (ulong)page * Page;
            void PageMapOps()
            {
                foreach (var m in maps)
                    for (int p = 0; p < m.Spec.Pages; p++)
                        ops.Add(ChildOps.PageMap(ChildAddr(m.Spec.Name, p)));
            }
            PageMapOps();
            // The op of each step (a madvise step may be followed by a wait, below).
            var stepOps = new int[op.Child.Count];
            int step = 0;
            foreach (var a in op.Child)
            {
                stepOps[step++] = ops.Count;
                if (a.Mremap)
                {
                    ulong target = SlotAddress(childSlot++);
                    ops.Add(ChildVm.Mremap(childAt[a.M], M(a.M).Len, target));
                    childAt[a.M] = target;
                    childPlaces.Add((M(a.M), target));
                    continue;
                }
                if (a.SigbusLoop)
                {
                    ops.Add(ChildVm.SigbusLoop(ChildAddr(a.M, a.Page), (ulong)a.Count * Page, sc.MappingIndex(a.M), wp: a.Write, wpFile: a.Write && M(a.M).Spec.Kind != MapKind.Anon, huge: hugetlb));
                    continue;
                }
                ops.Add(a.Madvise is { } adv ? ChildVm.Madvise(ChildAddr(a.M, a.Page), (ulong)a.Count * Page, AdviceNumber(adv))
                    : a.Pin ? IoUringPin.ChildPin(ChildAddr(a.M, a.Page), Page) : a.Write ? ChildOps.Write64(ChildAddr(a.M, a.Page), a.Tag) : ChildOps.Read64(ChildAddr(a.M, a.Page)));
                // The handler's UNREGISTER on REMOVE races the child's next access: userfaultfd_unregister wakes the range's
                // waiters before it clears each VMA, and a fault under the per-VMA lock can queue itself in between, leaving a
                // message for a range no longer registered (COPY ENOENT; seen in a 6.12 guest). So the child waits for it.
                if (a.Madvise is not null && sc.Policy.UnregisterOnRemove)
                    ops.Add(ChildOps.WaitParent());
            }
            int lastMaps = ops.Count;
            if (op.Child.Count > 0)
                PageMapOps();
            // The child's pins end after its last report, as upstream's child unpins after its pagemap check.
            if (op.Child.Any(a => a.Pin))
                ops.Add(IoUringPin.ChildUnpinAll());
            var opsArray = ops.ToArray();
            if (opt.ReplaceChildOps is { } replace)
                opsArray = replace(opsArray);
            // The op's bound is a bound on silence, not on the whole fork (a fork of this process and a child's
            // faulting accesses take many seconds under TCG on a loaded machine: a fixed bound reported false
            // "timeout"s on 7.3-rc guests): every child result and every message served is progress. The child
            // has finitely many ops and a run at most MaxFaultsPerOp faults, so the op still ends. A child silent
            // for the whole bound while alive is blocked (e.g. a write that retries forever, §3.11 fork): killed,
            // and the op ends "blocked", as the model says for a thread that is never released.
            long silence = Math.Max(1000, deadline - Environment.TickCount64);
            bool childStalled = false;
            forkSilenceMs = silence;
            Volatile.Write(ref forkProgressAt, Environment.TickCount64);
            lock (runningChildGate)
                owedReleases = 0;
            // With EVENT_FORK, fork() blocks until the FORK message is read (§3.5): a helper thread forks.
            var h = new Helper("fork", self =>
            {
                using var c = ForkedChild.Start(opsArray);
                lock (runningChildGate)
                {
                    runningChild = c;
                    for (; owedReleases > 0; owedReleases--)
                        c.Release();
                }
                Volatile.Write(ref forkProgressAt, Environment.TickCount64);
                while (true)
                {
                    try
                    {
                        if (!c.Next(50, out _))
                            break;
                        Volatile.Write(ref forkProgressAt, Environment.TickCount64);
                    }
                    catch (UffdException e) when (e.Errno == E.ETIMEDOUT)
                    {
                        if (Environment.TickCount64 - Volatile.Read(ref forkProgressAt) > silence)
                        {
                            childStalled = true;
                            break;
                        }
                    }
                }
                int code;
                lock (runningChildGate)
                    runningChild = null; // Finish frees the child's handle: no Release after this

                try
                {
                    code = c.Finish(childStalled ? 0 : (int)silence);
                }
                catch (UffdException e) when (e.Errno == E.ETIMEDOUT)
                {
                    childStalled = true;
                    code = -1;
                }
                self.Payload = c.Results.ToArray();
                return code;
            }).Start();
            helpers.Add(h);
            try
            {
                Serve(() => h.Done, deadline);
            }
            finally
            {
                forkSilenceMs = 0;
            }
            foreach (var cu in childUffds)
                cu.Close();
            childUffds.Clear();
            childPlaces.Clear();
            if (blocked)
                return "blocked";
            if (childStalled)
            {
                blocked = true;
                return "blocked";
            }
            if (h.Error is not null)
                return $"fork failed: {h.Error.Message}";
            var results = (ChildResult[])h.Payload!;
            var byIndex = results.ToDictionary(r => r.Index);

            string ChildMaps(int start)
            {
                var parts = new List<string>();
                int k = start;
                foreach (var m in maps)
                {
                    var chars = new char[m.Spec.Pages];
                    for (int p = 0; p < m.Spec.Pages; p++, k++)
                        chars[p] = byIndex.TryGetValue(k, out var r) && r.Ret == 0 ? PageChars.FromRaw(r.Value) : '?';
                    parts.Add($"{m.Spec.Name}={new string(chars)}");
                }
                return "pagemap " + string.Join(" ", parts);
            }
            childObs.Add(ChildMaps(0));
            for (int i = 0; i < op.Child.Count; i++)
            {
                var a = op.Child[i];
                string res = !byIndex.TryGetValue(stepOps[i], out var r) ? "missing"
                    : r.Sigbus > 0 ? $"sigbus code={r.SiCode}"
                    : a.SigbusLoop ? SigbusLoopText(r)
                    : r.Ret < 0 ? E.Name((int)-r.Ret)
                    : !a.IsAccess ? "ok"
                    : $"ok value=0x{(a.Write ? 0 : r.Value):x}";
                childObs.Add($"{a} {res}");
            }
            if (op.Child.Count > 0)
                childObs.Add(ChildMaps(lastMaps));
            return h.Result == 0 ? "ok" : $"child exit {h.Result}";
        }

        /// <summary>A sigbus loop's result in the model's words (ChildVm.SigbusLoop): its signals, or what failed (at which page).</summary>
        private static string SigbusLoopText(ChildResult r) =>
            r.Ret == 0 ? $"ok sigbus={r.Value & 0xffffffff} wp={r.Value >> 32}"
            : r.Ret is -E.EPROTO or -E.EIO ? $"{E.Name((int)-r.Ret)} page={r.Value}"
            : E.Name((int)-r.Ret);

        private static string Close(UffdEntry u)
        {
            u.Close();
            return "ok";
        }

        private static string Api(ApiOp op)
        {
            int flags = Uffd.OCloexec | Uffd.ONonblock;
            int fd = Userfaultfd.OpenRaw(op.Device ? UffdOpenPath.Device : UffdOpenPath.Syscall, flags, out _);
            if (fd < 0)
                return $"open={E.Name(-fd)}";
            using var u = Userfaultfd.Adopt(fd, UffdFeatures.None);
            var parts = new List<string> { "open=ok" };
            for (int i = 0; i < op.Steps.Count; i++)
            {
                var api = new UffdioApi { Api = op.Steps[i].Api, Features = op.Steps[i].Features };
                int rc = u.TryApi(ref api);
                parts.Add($"api{i}={(rc == 0 ? "ok" : E.Name(-rc))}");
            }
            return string.Join(" ", parts);
        }

        private string Scan(ScanOp op)
        {
            var m = M(op.M);
            var vec = new PageRegion[64];
            int n = pagemap!.TryScan(m.Address, m.Address + m.Len, vec, PageCategory.Written,
                PageCategory.Written | PageCategory.File | PageCategory.Present | PageCategory.Swapped | PageCategory.PfnZero, out _,
                op.WpMatching ? PageMapScanFlags.WpMatching | PageMapScanFlags.CheckWpAsync : PageMapScanFlags.None);
            if (n < 0)
                return E.Name(-n);
            var parts = new List<string> { $"ok regions={n}" };
            for (int i = 0; i < n; i++)
                parts.Add($"[{(vec[i].Start - m.Address) / Page},{(vec[i].End - m.Address) / Page}):0x{vec[i].Categories:x}");
            return string.Join(" ", parts);
        }

        // ---- serving the uffds -------------------------------------------------------------------------

        private IEnumerable<UffdEntry> Live => uffds.Where(u => !u.Closed).Concat(childUffds);

        // Waits until a live uffd (or doneFd, a worker's completion eventfd: -1 for none) is readable, at most timeoutMs.
        private bool AnyReadable(int timeoutMs, int doneFd = -1)
        {
            var live = Live.ToArray();
            int n = live.Length + (doneFd >= 0 ? 1 : 0);
            if (n == 0)
            {
                Thread.Sleep(Math.Min(timeoutMs, 1));
                return false;
            }
            var fds = stackalloc pollfd[n];
            for (int i = 0; i < live.Length; i++)
                fds[i] = new pollfd { fd = live[i].Fd.Fd, events = POLLIN };
            if (doneFd >= 0)
                fds[n - 1] = new pollfd { fd = doneFd, events = POLLIN };
            return poll(fds, (ulong_t)(ulong)n, timeoutMs) > 0;
        }

        /// <summary>Steps every live server until <paramref name="done"/> holds. A held event is read by
        /// the next op that serves (a drain waits for it). <paramref name="doneFd"/>: a descriptor that becomes
        /// readable when <paramref name="done"/> turns true (a native worker's completion), so the wait ends then.</summary>
        private void Serve(Func<bool> done, long deadline, int doneFd = -1)
        {
            while (true)
            {
                bool any = false;
                foreach (var u in Live.ToList())
                {
                    if (u.Server is not { Exit: null } server)
                        continue;
                    foreach (var r in server.ResolvePending())
                    {
                        any = true;
                        Record(u, r);
                        if (blocked)
                            return;
                    }
                }
                if (done())
                {
                    // Whatever the op raised has been read: a finished op cannot raise more.
                    return;
                }
                long now = Environment.TickCount64;
                if (any && forkSilenceMs > 0)
                    Volatile.Write(ref forkProgressAt, now);
                // During a fork the bound is on silence (see Fork); the fork helper, which sees the child, decides
                // first ("blocked"): this one only ends a fork that never returned to the helper.
                if (now > deadline && (forkSilenceMs == 0 || now - Volatile.Read(ref forkProgressAt) > forkSilenceMs + 2000))
                    throw new TimeoutException();
                if (!any)
                    AnyReadable(5, doneFd);
            }
        }

        /// <summary>After an mremap of m: the servers serve its new place (a REMAP event, when the uffd
        /// asked for them, already moved their range) and a MOVE source is taken from there.</summary>
        private void Moved(MapEntry m)
        {
            int index = maps.IndexOf(m);
            foreach (var u in Live)
            {
                if (u.Server is not { } server)
                    continue;
                if (!server.Ranges.Any(r => r.Contains(m.Address)))
                    server.Track(ScenarioHandler.Range(sc, index, m.Address, m.Len));
                if (m.Spec.Name == sc.Policy.MoveSource)
                    ScenarioHandler.MoveSourceMoved(server.Options.Policies, m.Address);
            }
        }

        /// <summary>The scenario page at addr; an address inside a page (never a fault's: the kernel reports the page,
        /// on hugetlb the huge page's base, §3.11) is named with its offset, which no model observation has.</summary>
        private (string Name, string Page)? Locate(ulong addr)
        {
            foreach (var (m, start) in maps.Select(m => (m, m.Address)).Concat(childPlaces))
                if (addr >= start && addr < start + m.Len)
                {
                    ulong off = (addr - start) % Page;
                    var page = ((addr - start) / Page).ToString(CultureInfo.InvariantCulture);
                    return (m.Spec.Name, off == 0 ? page : $"{page}@0x{off:x}");
                }
            return null;
        }

        /// <summary>One message a server read, and what it did with it, in the model's words.</summary>
        private void Record(UffdEntry u, Resolution r)
        {
            switch (r.Message)
            {
                case PageFault f:
                {
                    if (++faultsThisOp > Model.KernelModel.MaxFaultsPerOp)
                    {
                        // The model's livelock bound: stop resolving, the run ends "blocked".
                        blocked = true;
                        return;
                    }
                    ulong flags = (ulong)f.Flags;
                    if (Locate(f.Address) is not { } loc)
                    {
                        msgs.Add($"{u.Name} PF 0x{flags:x} 0x{f.Address:x} => unknown address");
                        blocked = true;
                        return;
                    }
                    msgs.Add($"{u.Name} PF 0x{flags:x} {loc.Name}+{loc.Page} => {Describe(r)}");
                    // The declared handler releases the thread only when its policy resolved the page
                    // (EEXIST + WAKE counts); anything else leaves it blocked (HandlerPolicy).
                    if (r.Outcome != FaultOutcome.Resolved)
                        blocked = true;
                    return;
                }
                case null when r.Kind == UffdEventKind.Fork:
                    msgs.Add($"{u.Name} FORK");
                    if (r.ForkChild is { } child)
                        childUffds.Add(new UffdEntry { Name = u.Name + "c", Fd = child.Uffd, Features = u.Features, Server = child });
                    return;
                case RemoveEvent e:
                {
                    var a = Locate(e.Start);
                    var text = a is { } l && int.TryParse(l.Page, CultureInfo.InvariantCulture, out int first)
                        ? $"{u.Name} REMOVE {l.Name}+{first}..{first + (int)((e.End - e.Start) / Page)}"
                        : $"{u.Name} REMOVE 0x{e.Start:x}..0x{e.End:x}";
                    // Upstream's handler UNREGISTERs the removed range (HandlerPolicy.UnregisterOnRemove); a releasing fork
                    // child waits for it before its next access (see Fork: the UNREGISTER would race that access).
                    if (sc.Policy.UnregisterOnRemove)
                    {
                        var range = new UffdioRange(e.Start, e.End - e.Start);
                        int rc = u.Fd.TryUnregister(ref range);
                        text += rc == 0 ? " => unregister" : $" => unregister:{E.Name(-rc)}";
                        // The releasing child waits for this (see Fork); a parent's madvise does not.
                        if (childUffds.Contains(u))
                            lock (runningChildGate)
                            {
                                if (runningChild is { } rc0)
                                    rc0.Release();
                                else
                                    owedReleases++;
                            }
                    }
                    msgs.Add(text);
                    return;
                }
                case RemapEvent e:
                {
                    var a = Locate(e.From);
                    msgs.Add($"{u.Name} REMAP {(a is { } l ? l.Name : $"0x{e.From:x}")}");
                    return;
                }
                case UnmapEvent e:
                    msgs.Add($"{u.Name} event 0x{(int)UffdEventKind.Unmap:x} 0x{e.Start:x}");
                    return;
                default:
                    msgs.Add($"{u.Name} event {r.Kind}");
                    return;
            }
        }

        /// <summary>The ioctls of the fault's run as the model names them: copy, copy-wp, zeropage,
        /// unprotect, continue, continue-wp, move, poison, wake; a failure as name:ERRNO. The WAKE a server issues
        /// after ENOENT (it drops the fault) is not the declared handler's: the model has the thread
        /// blocked there, and the run ends.</summary>
        private static string Describe(Resolution r)
        {
            if (r.Run is not { } run)
                return "no resolution (the server ended)";
            var ioctls = run.Ioctls;
            int n = ioctls.Count;
            if (r.Outcome == FaultOutcome.Dropped && n > 1 && ioctls[n - 1].Kind == ResolutionIoctlKind.Wake)
                n--;
            var parts = new string[n];
            for (int i = 0; i < n; i++)
            {
                var io = ioctls[i];
                string name = io.Kind switch
                {
                    ResolutionIoctlKind.Copy => io.WriteProtect ? "copy-wp" : "copy",
                    ResolutionIoctlKind.Continue => io.WriteProtect ? "continue-wp" : "continue",
                    ResolutionIoctlKind.ZeroPage => "zeropage",
                    ResolutionIoctlKind.WriteProtect => io.WriteProtect ? "protect" : "unprotect",
                    ResolutionIoctlKind.Move => "move",
                    ResolutionIoctlKind.Poison => "poison",
                    _ => "wake",
                };
                parts[i] = io.Succeeded ? name : $"{name}:{E.Name(io.Errno)}";
            }
            return string.Join(" ", parts);
        }

        // ---- teardown ------------------------------------------------------------------------------------

        /// <summary>After a hang: close every uffd — the kernel wakes all blocked threads, which then resolve
        /// normally (§1.5 close()) — and let the helpers finish.</summary>
        private void Abort()
        {
            foreach (var u in uffds)
                if (!u.Closed)
                    u.Close();
            foreach (var c in childUffds)
                c.Close();
            childUffds.Clear();
            foreach (var w in workers)
                w.Join(2000);
            foreach (var h in helpers)
                h.Join(5000);
        }

        public void Dispose()
        {
            Abort();
            // Pins first: a page must not stay pinned past the scenario (the ring would keep it until closed anyway).
            foreach (var p in allPins)
                p.Dispose();
            pins.Clear();
            // A worker still running after the close (it cannot be, barring a kernel bug) keeps the
            // reservation mapped: unmapping under it would SIGSEGV the whole process (issue 13).
            bool quiet = workers.All(w => w.Join(0));
            foreach (var w in workers)
                w.Dispose();
            // Unmap the reservation except what mremap vacated (someone else may own it by now).
            if (reservation != 0 && quiet)
            {
                ulong at = reservation, end = reservation + reservationLen;
                foreach (var (start, len) in vacated.OrderBy(v => v.Start))
                {
                    if (start > at)
                        munmap((void*)at, (size_t)(start - at));
                    at = Math.Max(at, start + len);
                }
                if (end > at)
                    munmap((void*)at, (size_t)(end - at));
            }
            pagemap?.Dispose();
            memfd?.Dispose();
            if (srcBuf != null)
                NativeMemory.AlignedFree(srcBuf);
        }
    }
}
