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

    private void Handle(PosixSignalContext context)
    {
        context.Cancel = true;
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
