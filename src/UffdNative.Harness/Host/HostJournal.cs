using System.Globalization;
using UffdNative.Harness.Io;

namespace UffdNative.Harness.Host;

/// <summary>One change of the host: a /proc/sys knob from <see cref="Before"/> to <see cref="After"/>.</summary>
public sealed record HostChange(string Path, string Before, string After, string Why)
{
    /// <summary>"vm.nr_hugepages" for /proc/sys/vm/nr_hugepages.</summary>
    public string Name => Path.StartsWith("/proc/sys/", StringComparison.Ordinal) ? Path["/proc/sys/".Length..].Replace('/', '.') : Path;
}

/// <summary>
/// The host as found. Every change a run makes to the host (a sysctl such as vm.nr_hugepages) is written to
/// a journal file — and fsync'd — BEFORE it is made, and taken out of it once restored. A run that ends
/// normally or by SIGINT/SIGTERM restores its own changes (<see cref="RestoreAll"/>, called by the CLI's
/// signal handlers); a run killed by SIGKILL leaves its journal, and the next start of any verb restores it
/// (<see cref="RecoverAbandoned"/>) and says so. The journal lives in /run/uffdnative/journal for root (a
/// tmpfs: emptied by a reboot, exactly when sysctls return to their boot values), else under
/// $XDG_RUNTIME_DIR or $XDG_STATE_HOME (~/.local/state); UFFDNATIVE_STATE_DIR overrides it.
/// </summary>
public static class HostJournal
{
    public const string StateDirectoryVariable = "UFFDNATIVE_STATE_DIR";
    private const string Header = "uffdnative host journal v1";

    private static readonly object Gate = new();
    private static readonly List<HostChange> Pending = [];
    private static bool closed;

    /// <summary>Where journals are kept.</summary>
    public static string DirectoryPath
    {
        get
        {
            if (Environment.GetEnvironmentVariable(StateDirectoryVariable) is { Length: > 0 } explicitDir)
                return Path.Combine(explicitDir, "journal");
            if (IsRoot())
                return "/run/uffdnative/journal";
            if (Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is { Length: > 0 } run)
                return Path.Combine(run, "uffdnative", "journal");
            var state = Environment.GetEnvironmentVariable("XDG_STATE_HOME") is { Length: > 0 } s
                ? s : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "state");
            return Path.Combine(state, "uffdnative", "journal");
        }
    }

    private static bool IsRoot() => Tmds.Linux.LibC.geteuid() == 0;

    private static string OwnFile => Path.Combine(DirectoryPath, $"{Environment.ProcessId}.{StartTime(Environment.ProcessId)}.journal");

    /// <summary>
    /// Writes <paramref name="value"/> to the knob <paramref name="path"/>, journalled first. Returns the
    /// change (with the value the kernel actually took) and a handle whose Dispose restores it. Throws
    /// <see cref="IOException"/>/<see cref="UnauthorizedAccessException"/> when the journal or the knob cannot
    /// be written (nothing is changed then), or when the run is already restoring because of a signal.
    /// </summary>
    public static (HostChange Change, IDisposable Restore) Set(string path, string value, string why)
    {
        lock (Gate)
        {
            if (closed)
                throw new IOException("the run is ending (interrupted): no more host changes");
            var before = File.ReadAllText(path).Trim();
            var change = new HostChange(path, before, value, why);
            Pending.Add(change);
            try
            {
                Save();
            }
            catch
            {
                Pending.Remove(change);
                throw;
            }
            try
            {
                File.WriteAllText(path, value);
            }
            catch
            {
                Pending.Remove(change);
                SaveOrDelete();
                throw;
            }
            // The kernel may take less than asked (huge pages it could not allocate): journal what it took.
            var taken = File.ReadAllText(path).Trim();
            if (taken != value)
            {
                Pending[Pending.IndexOf(change)] = change = change with { After = taken };
                SaveOrDelete();
            }
            return (change, new Restorer(change));
        }
    }

    private sealed class Restorer(HostChange change) : IDisposable
    {
        private int done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref done, 1) != 0)
                return;
            lock (Gate)
            {
                if (!Pending.Remove(change))
                    return; // already restored (by a signal handler)
                Restore(change);
                SaveOrDelete();
            }
        }
    }

    /// <summary>Restores every change of this process and refuses any further one (SIGINT, SIGTERM, exit).
    /// Returns a line per change restored, for the caller to report.</summary>
    public static IReadOnlyList<string> RestoreAll()
    {
        lock (Gate)
        {
            closed = true;
            var lines = new List<string>();
            foreach (var c in Pending.AsEnumerable().Reverse())
                lines.Add(Restore(c));
            Pending.Clear();
            SaveOrDelete();
            return lines;
        }
    }

    /// <summary>Test hook: lets a process that restored everything make changes again.</summary>
    internal static void Reopen()
    {
        lock (Gate)
            closed = false;
    }

    /// <summary>
    /// Restores what runs that died without restoring (SIGKILL, a crash) left in their journals: every
    /// journal whose process is gone (its pid absent, or reused by a process started at another time).
    /// Returns one line per change, saying what was restored and why.
    /// </summary>
    public static IReadOnlyList<string> RecoverAbandoned()
    {
        var lines = new List<string>();
        string[] files;
        try
        {
            files = Directory.Exists(DirectoryPath) ? Directory.GetFiles(DirectoryPath, "*.journal") : [];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return lines;
        }
        foreach (var file in files)
        {
            var name = Path.GetFileNameWithoutExtension(file).Split('.');
            if (name.Length != 2 || !int.TryParse(name[0], NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                continue;
            if (pid == Environment.ProcessId || StartTime(pid) == name[1])
                continue; // alive: its own signal handlers restore it
            // Claim it (one recovering process wins the rename), then restore.
            var claimed = $"{file}.recovering.{Environment.ProcessId}";
            try
            {
                File.Move(file, claimed);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            foreach (var c in Read(claimed).AsEnumerable().Reverse())
                lines.Add($"{Restore(c)} — left by an earlier run (pid {pid}) that was killed before it could restore it");
            File.Delete(claimed);
        }
        return lines;
    }

    /// <summary>
    /// Puts a knob back. A numeric knob is put back by the change's difference, never past the value found
    /// (a reservation of 2 huge pages is undone by -2, so another run's reservation made meanwhile stays); a
    /// knob still at the value found is left alone (the change was journalled but never made).
    /// </summary>
    private static string Restore(HostChange c)
    {
        string current;
        try
        {
            current = File.ReadAllText(c.Path).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"could not restore {c.Name}={c.Before}: {e.Message}";
        }
        if (current == c.Before)
            return $"{c.Name} is {c.Before} as found";
        string target;
        if (current == c.After)
            target = c.Before;
        else if (long.TryParse(current, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var cur)
            && long.TryParse(c.Before, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var before)
            && long.TryParse(c.After, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var after))
        {
            long delta = after - before, back = cur - delta;
            target = (delta > 0 ? Math.Max(before, back) : Math.Min(before, back)).ToString(CultureInfo.InvariantCulture);
        }
        else
            return $"{c.Name} is {current}, changed by someone else since this run set {c.After}: left as is (it was {c.Before})";
        try
        {
            File.WriteAllText(c.Path, target);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"could not restore {c.Name}={target}: {e.Message}";
        }
        return $"restored {c.Name}={target} (was {current}; {c.Why})";
    }

    private static void Save()
    {
        Directory.CreateDirectory(DirectoryPath);
        var text = $"{Header}\n" + string.Concat(Pending.Select(c => $"change\t{c.Path}\t{c.Before}\t{c.After}\t{c.Why.Replace('\t', ' ').Replace('\n', ' ')}\n"));
        AtomicFile.WriteAllText(OwnFile, text);
    }

    private static void SaveOrDelete()
    {
        try
        {
            if (Pending.Count > 0)
                Save();
            else if (File.Exists(OwnFile))
                File.Delete(OwnFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The knob itself is what matters; a stale journal entry is restored harmlessly (value as found).
        }
    }

    private static List<HostChange> Read(string file)
    {
        var list = new List<HostChange>();
        string[] lines;
        try
        {
            lines = File.ReadAllLines(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return list;
        }
        if (lines.Length == 0 || lines[0] != Header)
            return list;
        foreach (var line in lines.Skip(1))
        {
            var f = line.Split('\t');
            // Only /proc/sys knobs are ever journalled: a tampered journal cannot make root write elsewhere.
            if (f.Length == 5 && f[0] == "change" && f[1].StartsWith("/proc/sys/", StringComparison.Ordinal) && !f[1].Contains("..", StringComparison.Ordinal))
                list.Add(new HostChange(f[1], f[2], f[3], f[4]));
        }
        return list;
    }

    /// <summary>Field 22 of /proc/PID/stat (start time in clock ticks since boot): tells a live process from
    /// a later one that got the same pid. Null when there is no such process.</summary>
    internal static string? StartTime(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
            var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return rest.Length > 19 ? rest[19] : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
