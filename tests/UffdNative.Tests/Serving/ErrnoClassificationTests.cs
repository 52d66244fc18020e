using UffdNative.Interop;
using UffdNative.Serving;

namespace UffdNative.Tests.Serving;

/// <summary>
/// The one mapping from a resolution ioctl's errno to what the loop does. ENOMEM is asserted here, not
/// provoked: on this project's kernels a fill returns ENOMEM only when the kernel cannot allocate or
/// charge the page (mfill_atomic's folio allocation or its memory-cgroup charge, which needs a memory
/// limit this suite cannot set up on a cgroup v1 host without changing it) or, from 7.1, a shmem fill
/// beyond i_size — which a faulting thread cannot reach (the fault itself is SIGBUS there). ESRCH, the
/// owner gone, is provoked for real in <see cref="ServerTests"/>.
/// </summary>
public class ErrnoClassificationTests
{
    [Theory]
    [InlineData(Errno.EEXIST, "Exists")]
    [InlineData(Errno.EAGAIN, "RetryAfterEvents")]
    [InlineData(Errno.ENOENT, "RangeGone")]
    [InlineData(Errno.ESRCH, "OwnerGone")]
    [InlineData(Errno.ENOMEM, "AllocationFailure")] // not "owner gone": an allocation failure (issue 12)
    [InlineData(Errno.EFAULT, "Error")]
    [InlineData(Errno.EINVAL, "Error")]
    [InlineData(Errno.EPERM, "Error")]
    public void EachResolutionErrnoHasItsOutcome(int errno, string expected) => Assert.Equal(expected, FaultServer.ClassifyResolveErrno(errno).ToString());

    [Fact]
    public void AnAllocationFailureIsItsOwnExitReasonInBothLoops()
    {
        // The managed enum and the native loop's UFFD_LOOP_EXIT_* agree (NativeMirror checks the values
        // against the shim's table); an allocation failure is neither OwnerGone nor a generic Error.
        Assert.Equal(LoopAbi.ExitAllocationFailure, (int)FaultServerExitReason.AllocationFailure);
        Assert.NotEqual(FaultServerExitReason.OwnerGone, FaultServerExitReason.AllocationFailure);
        Assert.Equal(5, LoopAbi.EnomemRetries);
    }
}
