/* Checks the bytegroup codec's C loops (modelmanager/core/codecs/_bytegroup.c) without Python,
 * against plain loops written here from the format's definition: every vector path the target
 * has (SSE2 and SSSE3 on x86-64, NEON on arm64, which CI runs under qemu-aarch64), on random
 * planes of every length up to 300 and some long ones, with and without escapes.
 * Prints "ok <paths> <cases>" and exits 0, or names the first difference and exits 1.
 * tests/core/test_bytegroup_native.py compiles and runs it. */
#define BG_KERNELS_ONLY 1
#include "../../modelmanager/core/codecs/_bytegroup.c"

#include <stdio.h>
#include <stdlib.h>

static uint64_t seed = 0x9E3779B97F4A7C15ull;
static long cases = 0;

static uint8_t
rnd(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return (uint8_t)(seed >> 24);
}

static void
fill(uint8_t *b, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        b[i] = rnd();
    }
}

static int
fail(const char *what, int s, Py_ssize_t n, Py_ssize_t at)
{
    printf("FAIL %s: %d planes, n=%ld, first difference at %ld\n", what, s, (long)n, (long)at);
    return 1;
}

static Py_ssize_t
differ(const uint8_t *a, const uint8_t *b, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            return i;
        }
    }
    return -1;
}

/* -- the definitions ------------------------------------------------------------------- */

static void
ref_interleave(uint8_t *o, const uint8_t **p, int s, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        for (int j = 0; j < s; j++) {
            o[i * s + j] = (uint8_t)((p[j][i] >> 1) | (p[(j + 1) % s][i] << 7));
        }
    }
}

static void
ref_split(uint8_t *o, const uint8_t *x, int s, Py_ssize_t n)
{
    for (int j = 0; j < s; j++) {
        for (Py_ssize_t i = 0; i < n; i++) {
            o[j * n + i] = (uint8_t)((x[i * s + j] << 1) | (x[i * s + (j + s - 1) % s] >> 7));
        }
    }
}

static Py_ssize_t
ref_unpair(uint8_t *o, Py_ssize_t n, const uint8_t *in, const uint8_t *lookup,
           const uint8_t *esc, Py_ssize_t n_esc)
{
    Py_ssize_t used = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int code = i % 2 == 0 ? in[i / 2] >> 4 : in[i / 2] & 15;
        if (code == ESCAPE) {
            o[i] = used < n_esc ? esc[used] : 0;
            used++;
        } else {
            o[i] = lookup[code];
        }
    }
    return used;
}

static Py_ssize_t
ref_pair(uint8_t *o, uint8_t *esc, Py_ssize_t cap, const uint8_t *in, Py_ssize_t n,
         const uint8_t *rank)
{
    Py_ssize_t used = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint8_t c = rank[in[i]];
        if (i % 2 == 0) {
            o[i / 2] = (uint8_t)(c << 4);
        } else {
            o[i / 2] |= c;
        }
        if (c == ESCAPE) {
            if (used >= cap) {
                return -1;
            }
            esc[used++] = in[i];
        }
    }
    return used;
}

/* -- the checks ------------------------------------------------------------------------ */

static int
check_planes(int s, Py_ssize_t n)
{
    uint8_t *x = malloc((size_t)(s * n + 1)), *planes = malloc((size_t)(s * n + 1));
    uint8_t *want = malloc((size_t)(s * n + 1)), *got = malloc((size_t)(s * n + 1));
    const uint8_t *p[MAX_PLANES];
    int bad = 0;
    Py_ssize_t at;
    fill(x, s * n);
    ref_split(want, x, s, n);
    split_planes(planes, x, s, n);
    if ((at = differ(planes, want, s * n)) >= 0) {
        bad = fail("split", s, n, at);
    }
    for (int j = 0; j < s; j++) {
        p[j] = planes + j * n;
    }
    ref_interleave(want, p, s, n);
    interleave_planes(got, p, s, n);
    if (!bad && (at = differ(got, want, s * n)) >= 0) {
        bad = fail("interleave", s, n, at);
    }
    if (!bad && (at = differ(got, x, s * n)) >= 0) {
        bad = fail("split then interleave", s, n, at);
    }
    free(x);
    free(planes);
    free(want);
    free(got);
    cases++;
    return bad;
}

/* Codes with an escape roughly every ``escape_every`` codes (0: none). */
static int
check_unpair(Py_ssize_t n, int escape_every, int table_len, Py_ssize_t esc_short)
{
    Py_ssize_t half = (n + 1) / 2;
    uint8_t *in = malloc((size_t)half + 1), *want = malloc((size_t)n + 1);
    uint8_t *got = malloc((size_t)n + 1), table[16], lookup[16], esc[4096];
    int bad = 0;
    fill(table, 16);
    memset(lookup, 0, sizeof lookup);
    memcpy(lookup, table, (size_t)table_len);
    for (Py_ssize_t k = 0; k < half; k++) {
        uint8_t hi = rnd() % 15, lo = rnd() % 15;
        if (escape_every && rnd() % escape_every == 0) {
            hi = ESCAPE;
        }
        if (escape_every && rnd() % escape_every == 0) {
            lo = ESCAPE;
        }
        in[k] = (uint8_t)(hi << 4 | lo);
    }
    Py_ssize_t asked = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        asked += (i % 2 == 0 ? in[i / 2] >> 4 : in[i / 2] & 15) == ESCAPE;
    }
    Py_ssize_t n_esc = asked > esc_short ? asked - esc_short : 0;
    if (n_esc > (Py_ssize_t)sizeof esc) {
        n_esc = sizeof esc;
    }
    fill(esc, n_esc);
    Py_ssize_t used_want = ref_unpair(want, n, in, lookup, esc, n_esc);
    Py_ssize_t used_got = unpair_plane(got, n, in, table, table_len, esc, n_esc);
    Py_ssize_t at;
    if (used_got != used_want) {
        bad = fail("unpair's escape count", 1, n, -1);
    } else if ((at = differ(got, want, n)) >= 0) {
        bad = fail("unpair", 1, n, at);
    }
    free(in);
    free(want);
    free(got);
    cases++;
    return bad;
}

/* A rank table like an exponent plane's (common values under ``highs`` high nibbles; every
 * other value escaped), and a plane mostly of common values. */
static int
check_pair(Py_ssize_t n, int highs, int rare_every, Py_ssize_t cap_short)
{
    uint8_t rank[256], common[15], *in = calloc((size_t)n + 1, 1);
    uint8_t *want = malloc((size_t)(n + 1) / 2 + 1), *got = malloc((size_t)(n + 1) / 2 + 1);
    uint8_t esc_want[8192], esc_got[8192];
    int bad = 0, kinds = 0;
    memset(rank, ESCAPE, sizeof rank);
    uint8_t first_high = rnd() % (uint8_t)(17 - highs);
    while (kinds < 15) {
        uint8_t v = (uint8_t)((first_high + rnd() % highs) << 4 | (rnd() & 15));
        if (rank[v] == ESCAPE) {
            rank[v] = (uint8_t)kinds;
            common[kinds++] = v;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        in[i] = rare_every && rnd() % rare_every == 0 ? rnd() : common[rnd() % 15];
    }
    Py_ssize_t escapes = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        escapes += rank[in[i]] == ESCAPE;
    }
    Py_ssize_t cap = escapes > cap_short ? escapes - cap_short : 0;
    if (cap > (Py_ssize_t)sizeof esc_got) {
        cap = sizeof esc_got;
    }
    Py_ssize_t r_want = ref_pair(want, esc_want, cap, in, n, rank);
    Py_ssize_t r_got = pair_plane(got, esc_got, cap, in, n, rank);
    Py_ssize_t at;
    if (r_got != r_want) {
        printf("pair returned %ld, want %ld\n", (long)r_got, (long)r_want);
        bad = fail("pair's escape count", highs, n, -1);
    } else if (r_want >= 0 && (at = differ(got, want, (n + 1) / 2)) >= 0) {
        bad = fail("pair", highs, n, at);
    } else if (r_want >= 0 && (at = differ(esc_got, esc_want, r_want)) >= 0) {
        bad = fail("pair's escapes", highs, n, at);
    }
    free(in);
    free(want);
    free(got);
    cases++;
    return bad;
}

static int
check_all(void)
{
    static const Py_ssize_t longer[] = {1000, 4097, 65541};
    static const int widths[] = {1, 2, 3, 4, 8};
    for (int w = 0; w < 5; w++) {
        for (Py_ssize_t n = 0; n <= 300; n++) {
            if (check_planes(widths[w], n)) {
                return 1;
            }
        }
        for (int l = 0; l < 3; l++) {
            if (check_planes(widths[w], longer[l])) {
                return 1;
            }
        }
    }
    for (Py_ssize_t n = 0; n <= 300; n++) {
        for (int every = 0; every <= 40; every += 8) {
            if (check_unpair(n, every, (int)(n % 16), 0) || check_unpair(n, every, 15, 3)) {
                return 1;
            }
            if (check_pair(n, 1 + (int)(n % 4), every, 0) || check_pair(n, 5, every, 0)) {
                return 1;
            }
            if (every && check_pair(n, 2, every, 1)) {  /* one escape too many: refused */
                return 1;
            }
        }
    }
    for (int l = 0; l < 3; l++) {
        if (check_unpair(longer[l], 24, 15, 0) || check_pair(longer[l], 2, 64, 0) ||
            check_unpair(longer[l], 0, 9, 0) || check_pair(longer[l], 3, 0, 0)) {
            return 1;
        }
    }
    return 0;
}

int
main(void)
{
    const char *paths = "scalar";
#if BG_SSSE3
    vector_ok = has_ssse3();
    paths = vector_ok ? "sse2+ssse3" : "sse2";
    if (check_all()) {
        return 1;
    }
    if (vector_ok) {  /* and the scalar unpair and pair beside the vector ones */
        vector_ok = 0;
        if (check_all()) {
            return 1;
        }
        vector_ok = 1;
        paths = "sse2+ssse3,sse2";
    }
#else
#if BG_SSE2
    paths = "sse2";
#elif BG_NEON
    paths = "neon";
#endif
    if (check_all()) {
        return 1;
    }
#endif
    printf("ok %s %ld\n", paths, cases);
    return 0;
}
