namespace UffdNative.Harness.Scenarios;

/// <summary>
/// What one op showed, in canonical text so the model, the executor and the C reproducer produce
/// byte-identical forms:
/// <list type="bullet">
/// <item><see cref="Result"/>: "ok", "ok value=0x2a", "EEXIST field=-17", "EAGAIN field=?" (a "?" value is
/// unspecified: the model does not predict it), "sigbus", "blocked" ...</item>
/// <item><see cref="Messages"/>: each uffd message the op caused, in read order, with what the handler did:
/// "u0 PF 0x3 m0+1 => unprotect", "u0 REMOVE m0+0..2", "u0 FORK", "u0c PF 0x0 m0+1 => copy".</item>
/// <item><see cref="PageMap"/>: afterwards, per mapping, one character per page from pagemap
/// (<see cref="PageChars"/>); "*" is unspecified.</item>
/// <item><see cref="Child"/>: for fork, the child's pagemap and access results.</item>
/// </list>
/// </summary>
public sealed record OpObservation
{
    /// <summary>-1 for the setup (UFFDIO_API of every uffd, initial pagemap).</summary>
    public int Index { get; init; }
    public string Op { get; init; } = "";
    public string Result { get; init; } = "ok";
    public IReadOnlyList<string> Messages { get; init; } = [];
    public IReadOnlyDictionary<string, string> PageMap { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<string> Child { get; init; } = [];

    /// <summary>The one-line form the C reproducer prints and compares (same wildcards as the Differ).</summary>
    public string Canonical =>
        $"[{(Index < 0 ? "setup" : Index.ToString(System.Globalization.CultureInfo.InvariantCulture))}] {Result} || {string.Join(" | ", Messages)} || {string.Join(" | ", Child)} ||" +
        string.Concat(PageMap.Select(kv => $" {kv.Key}={kv.Value}"));

    public string Describe()
    {
        var sb = new System.Text.StringBuilder();
        sb.Append($"[{(Index < 0 ? "setup" : Index.ToString(System.Globalization.CultureInfo.InvariantCulture))}] {Op}: {Result}");
        foreach (var m in Messages)
            sb.Append($"\n      msg {m}");
        foreach (var c in Child)
            sb.Append($"\n      child {c}");
        if (PageMap.Count > 0)
            sb.Append("\n      pagemap " + string.Join(" ", PageMap.Select(kv => $"{kv.Key}={kv.Value}")));
        return sb.ToString();
    }
}
