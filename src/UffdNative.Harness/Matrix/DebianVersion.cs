namespace UffdNative.Harness.Matrix;

/// <summary>
/// Debian package versions ([epoch:]upstream[-revision]) in dpkg's order (deb-version(7)): the
/// builds of a kernel series are ordered by it — "6.12.115-2~deb12u1" before "6.12.117-1~deb12u1",
/// "7.3~rc7-1~exp1" before "7.3-1" — which a plain version sort gets wrong around '~'.
/// </summary>
public sealed class DebianVersion : IComparer<string>
{
    public static DebianVersion Comparer { get; } = new();

    int IComparer<string>.Compare(string? x, string? y) => Compare(x ?? "", y ?? "");

    public static int Compare(string a, string b)
    {
        var (ea, ua, ra) = Split(a);
        var (eb, ub, rb) = Split(b);
        int c = ea.CompareTo(eb);
        if (c != 0) return c;
        c = ComparePart(ua, ub);
        return c != 0 ? c : ComparePart(ra, rb);
    }

    private static (long Epoch, string Upstream, string Revision) Split(string v)
    {
        long epoch = 0;
        int colon = v.IndexOf(':', StringComparison.Ordinal);
        if (colon > 0 && long.TryParse(v.AsSpan(0, colon), out var e))
        {
            epoch = e;
            v = v[(colon + 1)..];
        }
        int dash = v.LastIndexOf('-');
        return dash > 0 ? (epoch, v[..dash], v[(dash + 1)..]) : (epoch, v, "");
    }

    // dpkg's verrevcmp: alternate non-digit runs (compared by Order) and digit runs (numerically).
    private static int ComparePart(string a, string b)
    {
        int i = 0, j = 0;
        while (i < a.Length || j < b.Length)
        {
            while ((i < a.Length && !char.IsAsciiDigit(a[i])) || (j < b.Length && !char.IsAsciiDigit(b[j])))
            {
                int oa = i < a.Length ? Order(a[i]) : 0, ob = j < b.Length ? Order(b[j]) : 0;
                if (oa != ob) return oa - ob;
                i++;
                j++;
            }
            while (i < a.Length && a[i] == '0') i++;
            while (j < b.Length && b[j] == '0') j++;
            int first = 0;
            while (i < a.Length && char.IsAsciiDigit(a[i]) && j < b.Length && char.IsAsciiDigit(b[j]))
            {
                if (first == 0) first = a[i] - b[j];
                i++;
                j++;
            }
            if (i < a.Length && char.IsAsciiDigit(a[i])) return 1;
            if (j < b.Length && char.IsAsciiDigit(b[j])) return -1;
            if (first != 0) return first;
        }
        return 0;
    }

    private static int Order(char c) =>
        char.IsAsciiDigit(c) ? 0 : char.IsAsciiLetter(c) ? c : c == '~' ? -1 : c + 256;
}
