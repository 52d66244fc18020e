/* uffd_harness_layout.c — the harness library's layout table: every struct and constant of
 * uffd_harness.h (and the shim structs the harness mirrors on its own side: the loop statistics, the
 * histogram, thread usage), as the C compiler lays them out. The harness's managed declarations
 * compare themselves with it at first use, as the binding does with the shim's table. */
#include "uffd_harness.h"

#include <stddef.h>

struct entry {
	const char *name;
	int64_t value;
};

#define S(T) { "sizeof(" #T ")", (int64_t)sizeof(struct T) }
#define O(T, F) { "offsetof(" #T "." #F ")", (int64_t)offsetof(struct T, F) }
#define C(N) { #N, (int64_t)(N) }

static const struct entry table[] = {
	S(uffd_hist),
	O(uffd_hist, count),
	O(uffd_hist, sum),
	O(uffd_hist, max),
	O(uffd_hist, buckets),
	S(uffd_loop_stats),
	O(uffd_loop_stats, faults),
	O(uffd_loop_stats, events),
	O(uffd_loop_stats, messages),
	O(uffd_loop_stats, reads),
	O(uffd_loop_stats, polls),
	O(uffd_loop_stats, batches),
	O(uffd_loop_stats, max_batch),
	O(uffd_loop_stats, runs),
	O(uffd_loop_stats, resolve_ioctls),
	O(uffd_loop_stats, wake_ioctls),
	O(uffd_loop_stats, pages_resolved),
	O(uffd_loop_stats, eexist),
	O(uffd_loop_stats, eagain),
	O(uffd_loop_stats, partial),
	O(uffd_loop_stats, enoent),
	O(uffd_loop_stats, deferred_max),
	O(uffd_loop_stats, snapshot_pages),
	O(uffd_loop_stats, zero_pages),
	O(uffd_loop_stats, loop_utime_ns),
	O(uffd_loop_stats, loop_stime_ns),
	O(uffd_loop_stats, loop_vcsw),
	O(uffd_loop_stats, loop_ivcsw),
	O(uffd_loop_stats, state),
	O(uffd_loop_stats, exit_reason),
	O(uffd_loop_stats, error),
	O(uffd_loop_stats, error_op),
	O(uffd_loop_stats, service),
	S(uffd_thread_usage),
	O(uffd_thread_usage, utime_ns),
	O(uffd_thread_usage, stime_ns),
	O(uffd_thread_usage, vcsw),
	O(uffd_thread_usage, ivcsw),
	O(uffd_thread_usage, minflt),
	O(uffd_thread_usage, majflt),
	S(uffd_loop_config),
	O(uffd_loop_config, uffd),
	O(uffd_loop_config, policy),
	O(uffd_loop_config, cpu),
	O(uffd_loop_config, max_msgs),
	O(uffd_loop_config, retry_ms),
	O(uffd_loop_config, range_start),
	O(uffd_loop_config, range_len),
	O(uffd_loop_config, source),
	O(uffd_loop_config, snapshot),
	O(uffd_loop_config, read_ahead),
	S(uffd_touch_config),
	O(uffd_touch_config, addr),
	O(uffd_touch_config, pages),
	O(uffd_touch_config, first_page),
	O(uffd_touch_config, seed),
	O(uffd_touch_config, mode),
	O(uffd_touch_config, cpu),
	S(uffd_touch_result),
	O(uffd_touch_result, start_ns),
	O(uffd_touch_result, end_ns),
	O(uffd_touch_result, pages),
	O(uffd_touch_result, checksum),
	O(uffd_touch_result, usage),
	O(uffd_touch_result, latency),
	S(uffd_verify_spec),
	O(uffd_verify_spec, addr),
	O(uffd_verify_spec, pages),
	O(uffd_verify_spec, base_seed),
	O(uffd_verify_spec, touch_seed),
	O(uffd_verify_spec, base),
	O(uffd_verify_spec, touched),
	C(UFFD_POLICY_MISSING_COPY),
	C(UFFD_POLICY_MISSING_ZERO),
	C(UFFD_POLICY_WP_UNPROTECT),
	C(UFFD_POLICY_WP_SNAPSHOT),
	C(UFFD_POLICY_MINOR_CONTINUE),
	C(UFFD_POLICY_READ_AHEAD),
	C(UFFD_POLICY_ASYNC),
	C(UFFD_TOUCH_READ),
	C(UFFD_TOUCH_WRITE),
	C(UFFD_VERIFY_ZERO),
	C(UFFD_VERIFY_PATTERN),
	S(uffd_soak_region_config),
	O(uffd_soak_region_config, addr),
	O(uffd_soak_region_config, pages),
	O(uffd_soak_region_config, seed),
	O(uffd_soak_region_config, base),
	O(uffd_soak_region_config, may_remove),
	O(uffd_soak_region_config, weight),
	O(uffd_soak_region_config, write_pct),
	S(uffd_soak_config),
	O(uffd_soak_config, threads),
	O(uffd_soak_config, regions),
	O(uffd_soak_config, seed),
	O(uffd_soak_config, region),
	S(uffd_soak_thread_stats),
	O(uffd_soak_thread_stats, ops),
	O(uffd_soak_thread_stats, reads),
	O(uffd_soak_thread_stats, writes),
	O(uffd_soak_thread_stats, verified),
	O(uffd_soak_thread_stats, inconclusive),
	O(uffd_soak_thread_stats, lost),
	O(uffd_soak_thread_stats, corrupt),
	O(uffd_soak_thread_stats, sweep_pages),
	O(uffd_soak_thread_stats, op_start_ns),
	O(uffd_soak_thread_stats, op_addr),
	O(uffd_soak_thread_stats, state),
	O(uffd_soak_thread_stats, tid),
	S(uffd_soak_failure),
	O(uffd_soak_failure, kind),
	O(uffd_soak_failure, region),
	O(uffd_soak_failure, thread),
	O(uffd_soak_failure, page),
	O(uffd_soak_failure, word),
	O(uffd_soak_failure, got),
	O(uffd_soak_failure, expected),
	C(UFFD_SOAK_MAX_REGIONS),
	C(UFFD_SOAK_MAX_THREADS),
	C(UFFD_SOAK_RUNNING),
	C(UFFD_SOAK_PARKED),
	C(UFFD_SOAK_DONE),
	C(UFFD_SOAK_SWEEP_READ),
	C(UFFD_SOAK_SWEEP_WRITE),
	C(UFFD_SOAK_LOST),
	C(UFFD_SOAK_CORRUPT),
	C(UFFD_HARNESS_ABI_VERSION),
};

int uffd_harness_abi_version(void) { return UFFD_HARNESS_ABI_VERSION; }

int uffd_harness_layout_count(void) { return (int)(sizeof(table) / sizeof(table[0])); }

int uffd_harness_layout_get(int index, const char **name, int64_t *value)
{
	if (index < 0 || index >= uffd_harness_layout_count())
		return -22; /* EINVAL */
	*name = table[index].name;
	*value = table[index].value;
	return 0;
}
