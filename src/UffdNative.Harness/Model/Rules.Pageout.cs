using UffdNative.Harness.Scenarios;

namespace UffdNative.Harness.Model;

/// <summary>madvise(MADV_PAGEOUT) (reference §3.9): reclaim of the range's pages, best effort. It raises no
/// REMOVE event. Without swap a private anonymous page (an anonymous mapping's page, or the COW copy in a
/// MAP_PRIVATE file mapping) cannot be written anywhere and stays mapped as it was, wp bit included: that is
/// what upstream's wp-fork leans on when it pages out private memory and then checks that the wp bit persists.
/// With swap the page may or may not go out (reclaim skips busy pages), and a shared file page is unmapped even
/// when its write-out then fails: neither is predicted, so those cells are out of the model's scope.</summary>
internal sealed partial class ModelRun
{
    private string PageOut(MapState m, int first, int count)
    {
        ConsultFact(EnvironmentFacts.SwapName);
        for (int p = first; p < first + count; p++)
        {
            var pte = m.Ptes[p];
            if (pte.IsNoneMostly)
                continue; // nothing mapped: nothing to reclaim
            if (pte.Mapped != MappedPage.Anon)
                throw new OutOfScopeException($"MADV_PAGEOUT of a {(pte.Mapped == MappedPage.Zero ? "zero-page" : "page-cache")} PTE (unmapped by reclaim or left, not predicted)");
            // Unknown (a profile not detected on a machine) predicts as without swap, like mainline's other defaults.
            if (Facts.Swap == true)
                throw new OutOfScopeException("MADV_PAGEOUT of an anonymous page with swap on (reclaim may or may not swap it out)");
        }
        return "ok";
    }
}
