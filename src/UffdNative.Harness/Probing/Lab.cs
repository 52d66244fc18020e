using UffdNative.Uapi;
using UffdNative.Messages;
using UffdNative.PageMap;

namespace UffdNative.Harness.Probing;

/// <summary>
/// The kit every probe experiment uses: opening uffds on whatever path this process may use,
/// asking UFFDIO_API about one feature, reading pagemap, and faulting from a native worker while
/// this thread serves the uffd with bounded waits. Experiments never touch registered memory from
/// managed code and never sleep: they wait for a message, a worker's completion or a poll result,
/// each with a deadline (a probe must finish on a TCG guest where a fault round trip takes ms).
/// </summary>
public sealed class Lab : IDisposable
{
    /// <summary>Upper bound for any single wait of an experiment (message, worker, child, event).</summary>
    public const int WaitMs = 3000;

    public static readonly ulong Page = Mapping.PageSize;

    private PageMapReader? pagemap;

    public Lab()
    {
        Kernel = KernelVersion.Running();
        Release = KernelVersion.RunningRelease();
        HasPtrace = HostFacts.HasCapability(HostFacts.CapSysPtrace);
        // Can a uffd that also sees kernel-mode faults be opened (device or plain syscall)?
        foreach (var path in OpenPolicy.FullOrder)
        {
            int fd = Userfaultfd.OpenRaw(path, Uffd.OCloexec | Uffd.ONonblock, out _);
            if (fd >= 0)
            {
                new SafeFdHandle(fd).Dispose();
                FullPath = path;
                break;
            }
        }
        try
        {
            Supported = Userfaultfd.QuerySupportedFeatures();
            CanOpen = true;
        }
        catch (UffdException e)
        {
            OpenError = e.Message;
        }
    }

    public KernelVersion Kernel { get; }
    public string Release { get; }
    public bool HasPtrace { get; }
    /// <summary>The path that gives a uffd without UFFD_USER_MODE_ONLY, or null (unprivileged:
    /// only user-mode-only uffds, which turn kernel-mode faults into EFAULT).</summary>
    public UffdOpenPath? FullPath { get; }
    public bool CanOpen { get; }
    public string? OpenError { get; }
    /// <summary>Everything UFFDIO_API(features=0) reported.</summary>
    public UffdFeatures Supported { get; }

    public bool Has(UffdFeatures f) => (Supported & f) == f;

    public PageMapReader PageMap => pagemap ??= PageMapReader.Open();

    private (Harness.Model.EnvironmentFacts, IReadOnlyList<FactFinding>)? facts;

    /// <summary>The environment facts of this machine (detected once per lab, by experiment).</summary>
    public (Harness.Model.EnvironmentFacts Facts, IReadOnlyList<FactFinding> Findings) Facts => facts ??= FactDetectors.DetectAll(this);

    private readonly Dictionary<string, Finding> remembered = new(StringComparer.Ordinal);

    /// <summary>One experiment's finding, run once per lab: rows that depend on another row's answer (e.g. whether
    /// pagemap shows the uffd-wp bit at all) ask for it here.</summary>
    public Finding Remember(string key, Func<Finding> run)
    {
        if (!remembered.TryGetValue(key, out var f))
            remembered[key] = f = run();
        return f;
    }

    public PageMapEntry Pm(ulong addr) => PageMap.Read(addr);

    public PageMapEntry[] Pm(ulong addr, long pages) => PageMap.Read(addr, pages);

    /// <summary>A uffd on which UFFDIO_API has not run (the uninitialised state, reference §1.2 rule 7),
    /// opened on the first path that works (device, syscall, user-mode-only syscall).</summary>
    public static Userfaultfd OpenUninitialized()
    {
        int fd = -Errno.ENOSYS;
        foreach (var path in new[] { UffdOpenPath.Device, UffdOpenPath.Syscall, UffdOpenPath.SyscallUserModeOnly })
            if ((fd = Userfaultfd.OpenRaw(path, Uffd.OCloexec | Uffd.ONonblock, out _)) >= 0)
                return Userfaultfd.Adopt(fd, UffdFeatures.None);
        throw new UffdException("open userfaultfd", -fd, "no open path works here", "see uffdnative probe");
    }

    /// <summary>UFFDIO_API on a fresh fd requesting exactly these features: 0 or the errno. This is
    /// the literal answer behind "not supported by this kernel (UFFDIO_API: EINVAL)".</summary>
    public unsafe int ApiErrno(UffdFeatures features, ulong api = (ulong)Uffd.Api)
    {
        using var u = OpenUninitialized();
        var a = new UffdioApi { Api = api, Features = (ulong)features };
        return -u.TryApi(ref a);
    }

    /// <summary>"not supported by this kernel (UFFDIO_API: EINVAL)" when requesting the feature
    /// fails, else null.</summary>
    public Finding? Unsupported(UffdFeatures feature)
    {
        int e = ApiErrno(feature);
        if (e == 0)
            return null;
        var info = UffdFeatureInfo.All.Where(f => (feature & f.Feature) != 0).Select(f => f.CName);
        return Finding.NotSupported($"not supported by this kernel (UFFDIO_API: {Errno.Name(e)})",
            $"UFFDIO_API requesting {string.Join("|", info)} returned {Errno.Name(e)}; reported features 0x{(ulong)Supported:x}");
    }

    public LabScope NewScope() => new(this);

    /// <summary>A pagemap entry as a short text: present/wp/swap bits.</summary>
    public static string Bits(PageMapEntry e) => $"present={(e.Present ? 1 : 0)} wp={(e.UffdWp ? 1 : 0)} swap={(e.Swap ? 1 : 0)}";

    public void Dispose() => pagemap?.Dispose();
}

/// <summary>How a worker's accesses went, and the fault messages served meanwhile.</summary>
public sealed record AccessOutcome(IReadOnlyList<PageFault> Faults, IReadOnlyList<AccessResult> Results, bool Finished, IReadOnlyList<string> Notes)
{
    /// <summary>The worker's kernel thread id (what THREAD_ID reports).</summary>
    public int WorkerTid { get; init; }

    public string FaultText => Faults.Count == 0 ? "no message" : string.Join(", ", Faults.Select(f => $"fault flags 0x{(ulong)f.Flags:x}"));
}

/// <summary>
/// The resources of one experiment, released in a safe order: every uffd first (the kernel then
/// unregisters its ranges and wakes any blocked thread), then the rest in reverse order of creation.
/// When a worker could not be released the mappings are deliberately leaked rather than unmapped
/// under a thread that may still touch them.
/// </summary>
public sealed class LabScope : IDisposable
{
    private readonly Lab lab;
    private readonly List<IDisposable> owned = [];
    private readonly List<Userfaultfd> uffds = [];

    internal LabScope(Lab lab) => this.lab = lab;

    /// <summary>Set when a worker stayed blocked even after its uffd was closed.</summary>
    public bool Stuck { get; private set; }

    public T Own<T>(T d) where T : IDisposable
    {
        owned.Add(d);
        return d;
    }

    public Mapping Anon(long pages, ulong fixedAddress = 0) => Own(Mapping.Anonymous((ulong)pages * Lab.Page, fixedAddress: fixedAddress));

    public MemfdFile Memfd(long pages, string name = "uffd-probe") => Own(MemfdFile.Create(name, pages * (long)Lab.Page));

    public Mapping Shared(MemfdFile f) => Own(f.MapShared());

    public Mapping Private(MemfdFile f) => Own(f.MapPrivate());

    /// <summary>A memfd of these pages and its MAP_SHARED mapping.</summary>
    public (MemfdFile File, Mapping Map) SharedMemfd(long pages)
    {
        var f = Memfd(pages);
        return (f, Shared(f));
    }

    /// <summary>A memfd of these pages, its MAP_SHARED mapping and a new uffd with these features (nothing registered).</summary>
    public (MemfdFile File, Mapping Map, Userfaultfd Uffd) SharedMemfdAndUffd(long pages, UffdFeatures features = UffdFeatures.None)
    {
        var (f, m) = SharedMemfd(pages);
        return (f, m, Uffd(features));
    }

    /// <summary>A memfd of these pages whose first cachedPages are in the page cache (pattern of seed: valid
    /// CONTINUE targets), mapped shared and registered with mode on a new uffd with these features.</summary>
    public (MemfdFile File, Mapping Map, Userfaultfd Uffd) RegisteredMemfd(long pages, RegisterMode mode, long cachedPages = 0, ulong seed = 0, UffdFeatures features = UffdFeatures.None)
    {
        var (f, m, u) = SharedMemfdAndUffd(pages, features);
        if (cachedPages > 0)
            f.WritePattern(0, cachedPages * (long)Lab.Page, seed);
        u.Register(m.Address, m.Length, mode);
        return (f, m, u);
    }

    /// <summary>A present one-page anonymous mapping whose first word is value: the source of a COPY or MOVE.</summary>
    public Mapping Source(ulong value)
    {
        var src = Anon(1);
        Accessor.Touch(src.Address, Lab.Page, write: true, value: value);
        return src;
    }

    /// <summary>A uffd with these features, on the first path this process may use (device,
    /// syscall, then user-mode-only), or on a user-mode-only one when asked.</summary>
    public Userfaultfd Uffd(UffdFeatures features = UffdFeatures.None, bool userModeOnly = false)
    {
        var u = Userfaultfd.Open(new UffdOpenOptions
        {
            RequiredFeatures = features,
            UserModeOnly = userModeOnly,
            Path = userModeOnly ? UffdOpenPath.SyscallUserModeOnly : UffdOpenPath.Auto,
        });
        uffds.Add(u);
        return u;
    }

    /// <summary>A uffd that also sees kernel-mode faults, or null when only user-mode-only uffds
    /// can be opened here.</summary>
    public Userfaultfd? FullUffd(UffdFeatures features = UffdFeatures.None)
    {
        if (lab.FullPath is not { } path)
            return null;
        var u = Userfaultfd.Open(new UffdOpenOptions { RequiredFeatures = features, Path = path });
        uffds.Add(u);
        return u;
    }

    /// <summary>A one-page anonymous hole registered with mode on a new uffd with these features.</summary>
    public (Mapping Map, Userfaultfd Uffd) RegisteredAnon(RegisterMode mode, UffdFeatures features = UffdFeatures.None)
    {
        var m = Anon(1);
        var u = Uffd(features);
        u.Register(m.Address, m.Length, mode);
        return (m, u);
    }

    /// <summary>A present one-page anonymous mapping (first word value) registered WP on a new uffd with these
    /// features, and write-protected unless asked not to.</summary>
    public (Mapping Map, Userfaultfd Uffd) WpRegisteredPage(ulong value, UffdFeatures features = UffdFeatures.None, bool protect = true)
    {
        var m = Source(value);
        var u = Uffd(features);
        u.Register(m.Address, m.Length, RegisterMode.WriteProtect);
        if (protect)
            u.WriteProtect(m.Address, m.Length, protect: true);
        return (m, u);
    }

    /// <summary>Closes one uffd now (close() semantics are what some experiments observe).</summary>
    public void Close(Userfaultfd u)
    {
        u.Dispose();
        uffds.Remove(u);
    }

    /// <summary>
    /// Runs ops on a native worker thread while this thread serves u: every fault message is
    /// recorded and handed to resolve (default: WP → un-protect, MISSING → ZEROPAGE, MINOR →
    /// CONTINUE; EEXIST → WAKE). Returns when the worker finished, or after timeoutMs (then the
    /// uffd is closed to release the worker, and the outcome says so).
    /// </summary>
    public AccessOutcome Run(Userfaultfd? u, AccessOp[] ops, Func<PageFault, bool>? resolve = null, int timeoutMs = Lab.WaitMs)
    {
        var faults = new List<PageFault>();
        var notes = new List<string>();
        var worker = new NativeWorker(ops);
        int tid = worker.ThreadId;
        long deadline = Environment.TickCount64 + timeoutMs;
        bool finished = false;
        while (true)
        {
            if (worker.Join(1))
            {
                finished = true;
                break;
            }
            long left = deadline - Environment.TickCount64;
            if (left <= 0)
                break;
            if (u is null || u.IsDisposed)
                continue;
            if (u.Poll((int)Math.Min(10, left)) == PollEvents.None)
                continue;
            foreach (var m in u.ReadTyped())
            {
                if (m is PageFault f)
                {
                    faults.Add(f);
                    bool handled = resolve?.Invoke(f) ?? false;
                    if (!handled)
                        DefaultResolve(u, f);
                }
                else
                {
                    notes.Add($"unexpected {m.Kind} message");
                    if (m is IDisposable d)
                        d.Dispose();
                }
            }
        }
        if (!finished)
        {
            notes.Add($"the worker was still blocked after {timeoutMs} ms; its uffd was closed to release it");
            if (u is not null)
                Close(u);
            if (!worker.Join(Lab.WaitMs))
            {
                Stuck = true;
                notes.Add("the worker stayed blocked after close; its memory is leaked on purpose");
                return new AccessOutcome(faults, [], false, notes) { WorkerTid = tid };
            }
        }
        var results = worker.Results.ToArray();
        worker.Dispose();
        return new AccessOutcome(faults, results, finished, notes) { WorkerTid = tid };
    }

    public static void DefaultResolve(Userfaultfd u, PageFault f)
    {
        ulong page = f.PageAddress(Lab.Page);
        switch (f.FaultKind)
        {
            case FaultKind.WriteProtect:
                u.WriteProtect(page, Lab.Page, protect: false);
                break;
            case FaultKind.Minor:
                if (u.Continue(page, Lab.Page).Status == FillStatus.Exists)
                    u.Wake(page, Lab.Page);
                break;
            default:
                if (u.ZeroPage(page, Lab.Page).Status == FillStatus.Exists)
                    u.Wake(page, Lab.Page);
                break;
        }
    }

    public void Dispose()
    {
        foreach (var u in uffds)
            u.Dispose();
        uffds.Clear();
        for (int i = owned.Count - 1; i >= 0; i--)
        {
            if (Stuck && owned[i] is Mapping)
                continue;
            owned[i].Dispose();
        }
        owned.Clear();
    }
}
