using UffdNative.Memory;

namespace UffdNative.Harness.Probing;

/// <summary>
/// The first form of <c>probe</c>: each open path, the features UFFDIO_API reports, and the ioctl
/// mask UFFDIO_REGISTER returns for anon / shmem MAP_SHARED / shmem MAP_PRIVATE × MISSING / WP / MINOR.
/// Every answer is a real experiment on this kernel (QEMU's "probe by trying").
/// </summary>
public static class BasicProbe
{
    public static ProbeReport Run()
    {
        var release = KernelVersion.RunningRelease();
        var report = new ProbeReport { KernelRelease = release, Kernel = KernelVersion.Running().ToString() };
        var kernel = KernelVersion.Running();

        foreach (var path in new[] { UffdOpenPath.Syscall, UffdOpenPath.SyscallUserModeOnly, UffdOpenPath.Device })
        {
            int fd = Userfaultfd.OpenRaw(path, Uffd.OCloexec | Uffd.ONonblock, out int stage);
            if (fd >= 0)
            {
                new SafeFdHandle(fd).Dispose();
                report.OpenPaths.Add(new OpenPathResult(path.ToString(), true, "OK", "", ""));
            }
            else
            {
                var (d, r) = Remedies.Open(path, -fd, stage, kernel);
                report.OpenPaths.Add(new OpenPathResult(path.ToString(), false, Errno.Name(-fd), d, r));
            }
        }

        UffdFeatures supported;
        try
        {
            supported = Userfaultfd.QuerySupportedFeatures();
        }
        catch (UffdException e)
        {
            return report with { ApiError = e.Message };
        }
        report = report with
        {
            Features = (ulong)supported,
            FeatureNames = UffdFeatureInfo.All.Where(f => (supported & f.Feature) != 0).Select(f => f.CName).ToList(),
        };

        using (var u = Userfaultfd.Open(new UffdOpenOptions { OptionalFeatures = supported & ~(UffdFeatures.EventFork | UffdFeatures.Sigbus | UffdFeatures.WpAsync) }))
            report = report with { ApiIoctls = (ulong)u.ApiIoctls };

        foreach (var memory in new[] { "anon", "shmem-shared", "shmem-private" })
            foreach (var mode in new[] { RegisterMode.Missing, RegisterMode.WriteProtect, RegisterMode.Minor })
                report.RegisterMasks.Add(ProbeRegister(memory, mode, supported));
        return report;
    }

    /// <summary>Registers one page of a fresh mapping of the given memory type on a fresh uffd.</summary>
    public static RegisterMaskResult ProbeRegister(string memory, RegisterMode mode, UffdFeatures supported)
    {
        using var file = memory == "anon" ? null : MemfdFile.Create("uffd-probe", (long)Mapping.PageSize);
        using var map = memory switch
        {
            "anon" => Mapping.Anonymous(Mapping.PageSize),
            "shmem-shared" => file!.MapShared(),
            _ => file!.MapPrivate(),
        };
        using var u = Userfaultfd.Open(new UffdOpenOptions { OptionalFeatures = supported & ~(UffdFeatures.EventFork | UffdFeatures.Sigbus | UffdFeatures.WpAsync) });
        int r = u.TryRegister(map.Address, map.Length, mode, out var ioctls);
        string why = r == 0 ? "" : Remedies.Register(map.Address, map.Length, mode, u.Features, u.SupportedFeatures, -r, KernelVersion.Running()).Detail;
        return new RegisterMaskResult(memory, ModeName(mode), Errno.Name(-r), (ulong)ioctls, why);
    }

    public static string ModeName(RegisterMode m) => m switch
    {
        RegisterMode.Missing => "MISSING",
        RegisterMode.WriteProtect => "WP",
        RegisterMode.Minor => "MINOR",
        _ => string.Join("|", new[] { (RegisterMode.Missing, "MISSING"), (RegisterMode.WriteProtect, "WP"), (RegisterMode.Minor, "MINOR") }.Where(x => (m & x.Item1) != 0).Select(x => x.Item2)),
    };
}
