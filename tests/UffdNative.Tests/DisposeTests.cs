using System.Reflection;
using UffdNative.Tests.Serving;

namespace UffdNative.Tests;

/// <summary>Use after dispose (issue 12, item 7): every public instance member of Userfaultfd, Mapping
/// and FaultServer throws ObjectDisposedException once disposed, so no stale descriptor number or
/// address range ever reaches the kernel.</summary>
public class DisposeTests
{
    private static readonly HashSet<string> Allowed = ["Dispose", "IsDisposed", "IsUnmapped", "Unmap", "GetType", "ToString", "Equals", "GetHashCode"];

    /// <summary>Calls every public instance member (default arguments; members taking a ref struct
    /// cannot be called by reflection and are covered by hand) and returns those that did not throw
    /// ObjectDisposedException.</summary>
    private static List<string> MembersThatDoNotThrow(object o)
    {
        var bad = new List<string>();
        var t = o.GetType();
        foreach (var p in t.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (Allowed.Contains(p.Name) || p.GetMethod is null || p.GetIndexParameters().Length > 0)
                continue;
            if (!Throws(() => p.GetValue(o)))
                bad.Add("get " + p.Name);
        }
        foreach (var m in t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
        {
            if (m.IsSpecialName || Allowed.Contains(m.Name) || m.IsGenericMethodDefinition)
                continue;
            var ps = m.GetParameters();
            if (ps.Any(p => p.ParameterType.IsByRefLike || (p.ParameterType.IsByRef && p.ParameterType.GetElementType()!.IsByRefLike) || p.ParameterType.IsPointer))
                continue;
            var args = ps.Select(p => p.HasDefaultValue ? p.DefaultValue : Default(p.ParameterType)).ToArray();
            if (!Throws(() => m.Invoke(o, args)))
                bad.Add(m.ToString()!);
        }
        return bad;
    }

    private static object? Default(Type t)
    {
        var e = t.IsByRef ? t.GetElementType()! : t;
        return e.IsValueType ? Activator.CreateInstance(e) : null;
    }

    private static bool Throws(Action a)
    {
        try
        {
            a();
            return false;
        }
        catch (TargetInvocationException e) when (e.InnerException is ObjectDisposedException)
        {
            return true;
        }
        catch (ObjectDisposedException)
        {
            return true;
        }
        catch (TargetInvocationException)
        {
            return false;
        }
    }

    [Fact]
    public void EveryMemberOfADisposedUserfaultfdThrows()
    {
        var uffd = Region.OpenUffd();
        uffd.Dispose();
        Assert.True(uffd.IsDisposed);
        Assert.Empty(MembersThatDoNotThrow(uffd));
        Assert.Throws<ObjectDisposedException>(() => uffd.ReadMessages(new UffdMsg[4]));
    }

    [Fact]
    public void ADisposedUserfaultfdNeverReachesTheUffdThatReusedItsNumber()
    {
        using var r = Region.Anon(4, RegisterMode.Missing);
        var stale = Region.OpenUffd();
        int number = stale.Fd;
        stale.Dispose();
        using var reused = Region.OpenUffd();
        // The kernel hands out the lowest free number: usually the stale one. Either way the stale
        // object must refuse before any ioctl.
        using var src = new Access.PageBuffer(Mapping.PageSize, 1);
        var copy = new UffdioCopy { Dst = r.Addr, Src = src.Address, Len = Mapping.PageSize };
        Assert.Throws<ObjectDisposedException>(() => stale.TryCopy(ref copy));
        Assert.Equal(0L, copy.Copy);
        _ = number;
    }

    [Fact]
    public void EveryMemberOfAnUnmappedMappingThrowsAndUnmapClearsTheRange()
    {
        var map = Mapping.Anonymous(4 * Mapping.PageSize);
        Assert.Equal(0, map.Unmap());
        Assert.True(map.IsUnmapped);
        Assert.Empty(MembersThatDoNotThrow(map));
        Assert.Throws<ObjectDisposedException>(() => map.Length);
        Assert.Throws<ObjectDisposedException>(() => map.TryAdvise(Advice.DontNeed));
        Assert.Equal(0, map.Unmap()); // once is enough; again is nothing
        map.Dispose();
    }

    [Fact]
    public void EveryMemberOfADisposedFaultServerThrows()
    {
        using var r = Region.Anon(4, RegisterMode.Missing);
        var server = S.Serve(r, new MissingZero());
        server.Dispose();
        Assert.Empty(MembersThatDoNotThrow(server));
        Assert.Throws<ObjectDisposedException>(() => server.Statistics);
    }

    [Fact]
    public void StatisticsReadConcurrentlyWithDisposeNeverReadFreedMemory()
    {
        for (int round = 0; round < 50; round++)
        {
            using var r = Region.Anon(4, RegisterMode.Missing);
            var server = S.Serve(r, new MissingZero());
            long reads = 0;
            using var go = new ManualResetEventSlim();
            var reader = new Thread(() =>
            {
                go.Set();
                while (true)
                {
                    try
                    {
                        _ = server.Statistics;
                        _ = server.FaultCount;
                        reads++;
                    }
                    catch (ObjectDisposedException)
                    {
                        return;
                    }
                }
            });
            reader.Start();
            go.Wait();
            server.Dispose();
            Assert.True(reader.Join(10_000));
        }
    }
}
