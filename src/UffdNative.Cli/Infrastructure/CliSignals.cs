using System.Runtime.InteropServices;
using UffdNative.Harness.Host;

namespace UffdNative.Cli.Infrastructure;

/// <summary>
/// The host as found, whatever ends a run. At the start of every verb, changes that an earlier run journalled
/// and could not restore (it was killed with SIGKILL) are restored and reported (<see cref="HostJournal.RecoverAbandoned"/>).
/// While a verb runs, SIGINT and SIGTERM restore this run's own changes (<see cref="HostJournal.RestoreAll"/>),
/// say so on one line, and end the process with the shell's code for the signal (130, 143).
/// </summary>
public sealed class CliSignals : IDisposable
{
    private readonly TextWriter error;
    private readonly PosixSignalRegistration[] registrations;

    private CliSignals(TextWriter error)
    {
        this.error = error;
        registrations =
        [
            PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle),
        ];
    }

    /// <summary>Recovers what killed runs left, then handles SIGINT/SIGTERM until disposed.</summary>
    public static CliSignals Install(TextWriter error)
    {
        foreach (var line in HostJournal.RecoverAbandoned())
            error.WriteLine($"uffdnative: {line}");
        return new CliSignals(error);
    }

    private static int verbHandles;

    /// <summary>While the result is not disposed, the running verb handles SIGINT and SIGTERM itself (serve
    /// stops its sessions and tells each client, then returns): this handler then neither restores nor
    /// exits. Only for verbs that make no host change.</summary>
    public static IDisposable VerbHandlesSignals()
    {
        Interlocked.Increment(ref verbHandles);
        return new SignalScope();
    }

    private sealed class SignalScope : IDisposable
    {
        private int done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref done, 1) == 0)
                Interlocked.Decrement(ref verbHandles);
        }
    }

    private void Handle(PosixSignalContext context)
    {
        context.Cancel = true;
        if (Volatile.Read(ref verbHandles) > 0)
            return;
        var (name, code) = context.Signal == PosixSignal.SIGINT ? ("SIGINT", 130) : ("SIGTERM", 143);
        var restored = HostJournal.RestoreAll();
        error.WriteLine($"uffdnative: interrupted by {name}" + (restored.Count > 0 ? $": {string.Join("; ", restored)}" : ": no host change to restore"));
        error.Flush();
        Environment.Exit(code);
    }

    public void Dispose()
    {
        foreach (var r in registrations)
            r.Dispose();
    }
}
