namespace UffdNative.Cli;

/// <summary>The documented exit codes of every verb.</summary>
public static class ExitCodes
{
    /// <summary>Everything ran and agreed.</summary>
    public const int Ok = 0;
    /// <summary>A divergence, a failed verification or a failed check was found.</summary>
    public const int Failure = 1;
    /// <summary>The command line was wrong (unknown verb or option, bad value, missing file).</summary>
    public const int Usage = 2;
    /// <summary>This environment cannot run userfaultfd (permission, seccomp, missing kernel support).</summary>
    public const int Environment = 3;
}
