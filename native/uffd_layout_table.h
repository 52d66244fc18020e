/* uffd_layout_table.h — how a library writes its layout table (native/uffd_layout.c for the shim,
 * native/harness/uffd_harness_layout.c for the harness library): one entry per struct size, field
 * offset or constant, named "sizeof(T)", "offsetof(T.field)" or the macro name, as the managed side
 * names its own values (src/Shared/NativeMirror.cs compares the two). */
#ifndef UFFD_LAYOUT_TABLE_H
#define UFFD_LAYOUT_TABLE_H

#include <stddef.h>
#include <stdint.h>

struct uffd_layout_entry {
	const char *name;
	int64_t value;
};

#define S(T) { "sizeof(" #T ")", (int64_t)sizeof(struct T) }
#define O(T, F) { "offsetof(" #T "." #F ")", (int64_t)offsetof(struct T, F) }
#define C(N) { #N, (int64_t)(N) }

/* The two exports over a `static const struct uffd_layout_entry table[]`: the entry count, and entry
 * INDEX (-EINVAL outside the table). */
#define UFFD_LAYOUT_EXPORTS(COUNT, GET)                                                            \
	int COUNT(void) { return (int)(sizeof(table) / sizeof(table[0])); }                        \
	int GET(int index, const char **name, int64_t *value)                                      \
	{                                                                                          \
		if (index < 0 || index >= COUNT())                                                 \
			return -22; /* EINVAL */                                                   \
		*name = table[index].name;                                                         \
		*value = table[index].value;                                                       \
		return 0;                                                                          \
	}

#endif
