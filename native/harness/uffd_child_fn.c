/* uffd_child_fn.c — the one table of the harness's UFFD_CHILD_CALL steps (uffd_harness.h). */
#include "uffd_harness.h"

static const uffd_child_fn child_fns[] = {
	[UFFD_CHILD_FN_PIN] = uffd_child_pin,
	[UFFD_CHILD_FN_UNPIN_ALL] = uffd_child_unpin_all,
	[UFFD_CHILD_FN_MREMAP] = uffd_child_mremap,
	[UFFD_CHILD_FN_MADVISE] = uffd_child_madvise,
	[UFFD_CHILD_FN_SIGBUS_LOOP] = uffd_child_sigbus_loop,
};

uint64_t uffd_child_fn_of(int which)
{
	if (which < 0 || which >= (int)(sizeof(child_fns) / sizeof(child_fns[0])))
		return 0;
	return (uint64_t)(uintptr_t)child_fns[which];
}
