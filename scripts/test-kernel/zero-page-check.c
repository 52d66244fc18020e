// zero-page-check.c — does an anonymous read fault map the shared zero page on this kernel?
//
// Evidence, for a private anonymous mapping with MADV_NOHUGEPAGE, after reading one byte of two pages:
//   /proc/self/pagemap  bit 63 present, bit 56 "exclusively mapped", PFN (bits 0-54; root only):
//                       the zero page is present, not exclusive, and both pages share one PFN;
//                       a private zeroed page is exclusive, with a PFN of its own.
//   PAGEMAP_SCAN        (6.7+) category PAGE_IS_PFNZERO (0x20), where the kernel has the ioctl.
//   /proc/kpageflags    (root) bit 24 KPF_ZERO_PAGE of that PFN: the zero page (or huge zero page).
// And for a 2 MiB MADV_HUGEPAGE region read once: AnonHugePages in /proc/self/smaps (a real THP
// counts 2048 kB; the huge zero page 0) and PAGE_IS_PFNZERO. And UFFDIO_ZEROPAGE, which must map
// the zero page whatever the fault path does.
//
// Usage: zero-page-check [zero|private]   — with an expectation, exit 1 when the anon read fault
// result differs from it (exit 2 when the evidence is missing, e.g. not root so no PFNs).
// Build: gcc -O2 -Wall -o zero-page-check zero-page-check.c
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

struct pm_scan_arg_local {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
struct page_region_local { uint64_t start, end, categories; };
#define PAGEMAP_SCAN_LOCAL _IOWR('f', 16, struct pm_scan_arg_local)
#define PAGE_IS_PRESENT_L (1ULL << 3)
#define PAGE_IS_PFNZERO_L (1ULL << 5)
#define PAGE_IS_HUGE_L (1ULL << 6)

static long page;
static int pagemap_fd = -1, kpageflags_fd = -1;

// KPF_ZERO_PAGE (bit 24) of a PFN from /proc/kpageflags: 1, 0, or -1 when unreadable (not root).
static int kpf_zero(uint64_t pfn)
{
    uint64_t flags;
    if (!pfn || kpageflags_fd < 0 || pread(kpageflags_fd, &flags, sizeof flags, pfn * sizeof flags) != sizeof flags)
        return -1;
    return (flags >> 24) & 1;
}

static uint64_t pagemap_entry(void *addr)
{
    uint64_t e = 0;
    if (pread(pagemap_fd, &e, sizeof e, ((uintptr_t)addr / page) * sizeof e) != sizeof e)
        return 0;
    return e;
}

// PAGE_IS_* categories of the page at addr; -1 when the kernel has no PAGEMAP_SCAN.
static long long scan_categories(void *addr, size_t len)
{
    struct page_region_local vec[4];
    struct pm_scan_arg_local arg = {
        .size = sizeof arg, .start = (uintptr_t)addr, .end = (uintptr_t)addr + len,
        .vec = (uintptr_t)vec, .vec_len = 4,
        .return_mask = PAGE_IS_PRESENT_L | PAGE_IS_PFNZERO_L | PAGE_IS_HUGE_L,
    };
    long n = ioctl(pagemap_fd, PAGEMAP_SCAN_LOCAL, &arg);
    if (n < 0)
        return -1;
    return n == 0 ? 0 : (long long)vec[0].categories;
}

static long anon_huge_kb(void *addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0;
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2)
            in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
        else if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

static void describe(const char *what, void *addr, uint64_t *pfn_out, int *excl_out)
{
    uint64_t e = pagemap_entry(addr);
    long long cat = scan_categories(addr, page);
    uint64_t pfn = e & ((1ULL << 55) - 1);
    int present = (e >> 63) & 1, excl = (e >> 56) & 1;
    printf("%s: present=%d exclusive=%d pfn=%s", what, present, excl, pfn ? "" : "hidden(not root)");
    if (pfn)
        printf("0x%llx kpf_zero_page=%d", (unsigned long long)pfn, kpf_zero(pfn));
    if (cat < 0)
        printf(" pagemap_scan=unsupported\n");
    else
        printf(" pfnzero=%d\n", (cat & PAGE_IS_PFNZERO_L) ? 1 : 0);
    *pfn_out = pfn;
    *excl_out = excl;
}

int main(int argc, char **argv)
{
    const char *expect = argc > 1 ? argv[1] : NULL;
    page = sysconf(_SC_PAGESIZE);
    pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
    kpageflags_fd = open("/proc/kpageflags", O_RDONLY);
    if (pagemap_fd < 0) {
        perror("open /proc/self/pagemap");
        return 2;
    }
    FILE *cl = fopen("/proc/cmdline", "r");
    char cmdline[1024] = "";
    if (cl) {
        if (!fgets(cmdline, sizeof cmdline, cl))
            cmdline[0] = 0;
        fclose(cl);
    }
    printf("uffdnative_no_zero_page on the command line: %s\n", strstr(cmdline, "uffdnative_no_zero_page=1") ? "yes" : "no");

    // 1. Anonymous read faults, 4 KiB pages.
    char *a = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED || madvise(a, 4 * page, MADV_NOHUGEPAGE) != 0) {
        perror("mmap/madvise");
        return 2;
    }
    volatile char sink = a[0] + a[page];
    (void)sink;
    uint64_t pfn0, pfn1;
    int ex0, ex1;
    describe("anon read page 0", a, &pfn0, &ex0);
    describe("anon read page 1", a + page, &pfn1, &ex1);
    long long cat0 = scan_categories(a, page);
    const char *anon;
    if (cat0 >= 0)
        anon = (cat0 & PAGE_IS_PFNZERO_L) ? "zero" : "private";
    else if (kpf_zero(pfn0) >= 0)
        anon = kpf_zero(pfn0) ? "zero" : "private";
    else if (pfn0 && pfn1)
        anon = (pfn0 == pfn1 && !ex0 && !ex1) ? "zero" : (pfn0 != pfn1 && ex0 && ex1) ? "private" : "unclear";
    else
        anon = ex0 ? "private" : "unclear";
    printf("anon read fault: %s%s\n", strcmp(anon, "zero") == 0 ? "the shared zero page" : strcmp(anon, "private") == 0 ? "a private zeroed page" : "not determined",
        cat0 >= 0 ? " (PAGEMAP_SCAN PAGE_IS_PFNZERO)" : kpf_zero(pfn0) >= 0 ? (pfn0 == pfn1 ? " (one PFN for both pages, not exclusive, KPF_ZERO_PAGE)" : " (two PFNs, exclusive, not KPF_ZERO_PAGE)") : (pfn0 && pfn1) ? (pfn0 == pfn1 ? " (one PFN for both pages, not exclusive)" : " (two PFNs, exclusive)") : " (exclusive bit only: run as root for PFNs)");

    // 2. A THP read fault (2 MiB, MADV_HUGEPAGE; THP must be enabled: madvise or always).
    size_t huge = 2UL << 20;
    char *h = mmap(NULL, 2 * huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (h != MAP_FAILED) {
        char *hh = (char *)(((uintptr_t)h + huge - 1) & ~(huge - 1));
        madvise(hh, huge, MADV_HUGEPAGE);
        sink = hh[0];
        long kb = anon_huge_kb(hh);
        long long hc = scan_categories(hh, page);
        uint64_t he = pagemap_entry(hh);
        int hz = kpf_zero(he & ((1ULL << 55) - 1));
        printf("thp read fault: AnonHugePages=%ld kB exclusive=%d kpf_zero_page=%d%s -> %s\n", kb, (int)((he >> 56) & 1), hz,
            hc < 0 ? " pagemap_scan=unsupported" : (hc & PAGE_IS_PFNZERO_L) ? " pfnzero=1" : " pfnzero=0",
            kb >= 2048 ? "a real THP" : ((hc >= 0 && (hc & PAGE_IS_PFNZERO_L)) || hz == 1) ? "the huge zero page" : kb == 0 ? "no THP (huge zero page, or THP off)" : "not determined");
    }

    // 3. UFFDIO_ZEROPAGE: maps the zero page in either configuration.
    int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (uffd < 0) {
        printf("uffdio_zeropage: userfaultfd: %s\n", strerror(errno));
    } else {
        struct uffdio_api api = { .api = UFFD_API };
        char *z = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        madvise(z, 2 * page, MADV_NOHUGEPAGE);
        struct uffdio_register reg = { .range = { (uintptr_t)z, 2 * page }, .mode = UFFDIO_REGISTER_MODE_MISSING };
        struct uffdio_zeropage zp = { .range = { (uintptr_t)z, page } };
        if (ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg) || ioctl(uffd, UFFDIO_ZEROPAGE, &zp)) {
            printf("uffdio_zeropage: %s\n", strerror(errno));
        } else {
            uint64_t zpfn;
            int zex;
            describe("uffdio_zeropage page", z, &zpfn, &zex);
            long long zc = scan_categories(z, page);
            printf("uffdio_zeropage: %s\n", zc >= 0 ? ((zc & PAGE_IS_PFNZERO_L) ? "the shared zero page" : "NOT the zero page")
                : kpf_zero(zpfn) >= 0 ? (kpf_zero(zpfn) ? "the shared zero page (KPF_ZERO_PAGE)" : "NOT the zero page (no KPF_ZERO_PAGE)")
                : (zpfn && strcmp(anon, "zero") == 0) ? (zpfn == pfn0 ? "the shared zero page (same PFN as the anon read)" : "NOT the zero page")
                : zex ? "NOT the zero page (exclusive)" : "not exclusive (zero page, by the exclusive bit)");
        }
        close(uffd);
    }

    if (!expect)
        return strcmp(anon, "unclear") == 0 ? 2 : 0;
    if (strcmp(anon, "unclear") == 0)
        return 2;
    return strcmp(anon, expect) == 0 ? 0 : 1;
}
