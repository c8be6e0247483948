/* The byte-plane loops of the bytegroup codec (codecs/bytegroup.py) in C, both ways.
 *
 * numpy does each step of a decode as its own pass over the chunk (widen every plane, shift, or
 * them together, rotate; for a pair-coded plane a table gather, then two scans for escapes),
 * and of an encode likewise (rotate, transpose; a rank gather, an escape mask, a gather of the
 * escapes, two strided slices to pack); here each is one pass into the caller's buffers, with
 * the GIL released so coding threads run in parallel. Plain
 * CPython API and buffers only: no numpy headers, any C99 compiler. bytegroup.py falls back to
 * its numpy code, giving the same bytes, when this module was not built.
 */
#if defined(BG_KERNELS_ONLY)
/* The loops alone, without Python: tests/native/bytegroup_kernels.c runs them natively and, for
 * NEON, cross-compiled under qemu-aarch64 (the one arm64 machine CI has). */
#include <stddef.h>
typedef ptrdiff_t Py_ssize_t;
#else
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#endif
#include <stdint.h>
#include <string.h>

#if defined(_MSC_VER) && !defined(__clang__)
#define restrict __restrict /* MSVC's C mode before /std:c11 spells it so */
#endif

#define MAX_PLANES 8
#define ESCAPE 15

/* Output byte j of element i from the planes: the little-endian word of the plane bytes,
 * rotated right by one bit, is byte-wise (plane j >> 1) | (plane j+1 << 7), wrapping. */
#define INTERLEAVE(S)                                                                   \
    for (Py_ssize_t i = 0; i < n; i++) {                                                \
        for (int j = 0; j < (S); j++) {                                                 \
            o[i * (S) + j] = (uint8_t)((p[j][i] >> 1) | (p[(j + 1) % (S)][i] << 7));    \
        }                                                                               \
    }

/* BG_NO_SIMD (a -D flag) builds the scalar loops only: the tests check them that way. */
#if defined(BG_NO_SIMD)
#elif defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#define BG_SSE2 1
#include <emmintrin.h>
#elif defined(__aarch64__) || defined(_M_ARM64)
#define BG_NEON 1
#include <arm_neon.h>
#endif

/* The hot cases (bf16 and fp16; fp32) in vectors where the CPU's baseline has them: SSE2 on
 * every x86-64, NEON on every arm64; the scalar loop finishes the last few elements. */
static void
interleave_2(uint8_t *restrict o, const uint8_t *restrict p0, const uint8_t *restrict p1,
             Py_ssize_t n)
{
    Py_ssize_t i = 0;
#if BG_SSE2
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(p0 + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(p1 + i));
        __m128i lo = _mm_unpacklo_epi8(a, b), hi = _mm_unpackhi_epi8(a, b);
        lo = _mm_or_si128(_mm_srli_epi16(lo, 1), _mm_slli_epi16(lo, 15));
        hi = _mm_or_si128(_mm_srli_epi16(hi, 1), _mm_slli_epi16(hi, 15));
        _mm_storeu_si128((__m128i *)(o + 2 * i), lo);
        _mm_storeu_si128((__m128i *)(o + 2 * i + 16), hi);
    }
#elif BG_NEON
    for (; i + 16 <= n; i += 16) {
        uint8x16_t a = vld1q_u8(p0 + i), b = vld1q_u8(p1 + i);
        uint8x16x2_t q;  /* rotated byte-wise, then stored interleaved */
        q.val[0] = vorrq_u8(vshrq_n_u8(a, 1), vshlq_n_u8(b, 7));
        q.val[1] = vorrq_u8(vshrq_n_u8(b, 1), vshlq_n_u8(a, 7));
        vst2q_u8(o + 2 * i, q);
    }
#endif
    for (; i < n; i++) {
        o[2 * i] = (uint8_t)((p0[i] >> 1) | (p1[i] << 7));
        o[2 * i + 1] = (uint8_t)((p1[i] >> 1) | (p0[i] << 7));
    }
}

#if BG_SSE2
static inline __m128i
rotr32(__m128i w)
{
    return _mm_or_si128(_mm_srli_epi32(w, 1), _mm_slli_epi32(w, 31));
}
#endif

static void
interleave_4(uint8_t *restrict o, const uint8_t *restrict p0, const uint8_t *restrict p1,
             const uint8_t *restrict p2, const uint8_t *restrict p3, Py_ssize_t n)
{
    Py_ssize_t i = 0;
#if BG_SSE2
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(p0 + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(p1 + i));
        __m128i c = _mm_loadu_si128((const __m128i *)(p2 + i));
        __m128i d = _mm_loadu_si128((const __m128i *)(p3 + i));
        __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b);
        __m128i cd_lo = _mm_unpacklo_epi8(c, d), cd_hi = _mm_unpackhi_epi8(c, d);
        _mm_storeu_si128((__m128i *)(o + 4 * i), rotr32(_mm_unpacklo_epi16(ab_lo, cd_lo)));
        _mm_storeu_si128((__m128i *)(o + 4 * i + 16), rotr32(_mm_unpackhi_epi16(ab_lo, cd_lo)));
        _mm_storeu_si128((__m128i *)(o + 4 * i + 32), rotr32(_mm_unpacklo_epi16(ab_hi, cd_hi)));
        _mm_storeu_si128((__m128i *)(o + 4 * i + 48), rotr32(_mm_unpackhi_epi16(ab_hi, cd_hi)));
    }
#elif BG_NEON
    for (; i + 16 <= n; i += 16) {
        uint8x16_t a = vld1q_u8(p0 + i), b = vld1q_u8(p1 + i);
        uint8x16_t c = vld1q_u8(p2 + i), d = vld1q_u8(p3 + i);
        uint8x16x4_t q;
        q.val[0] = vorrq_u8(vshrq_n_u8(a, 1), vshlq_n_u8(b, 7));
        q.val[1] = vorrq_u8(vshrq_n_u8(b, 1), vshlq_n_u8(c, 7));
        q.val[2] = vorrq_u8(vshrq_n_u8(c, 1), vshlq_n_u8(d, 7));
        q.val[3] = vorrq_u8(vshrq_n_u8(d, 1), vshlq_n_u8(a, 7));
        vst4q_u8(o + 4 * i, q);
    }
#endif
    for (; i < n; i++) {
        o[4 * i] = (uint8_t)((p0[i] >> 1) | (p1[i] << 7));
        o[4 * i + 1] = (uint8_t)((p1[i] >> 1) | (p2[i] << 7));
        o[4 * i + 2] = (uint8_t)((p2[i] >> 1) | (p3[i] << 7));
        o[4 * i + 3] = (uint8_t)((p3[i] >> 1) | (p0[i] << 7));
    }
}

static void
interleave_any(uint8_t *restrict o, const uint8_t **p, int s, Py_ssize_t n)
{
    if (s == 1) {
        INTERLEAVE(1)
    } else if (s == 8) {
        INTERLEAVE(8)
    } else {
        for (Py_ssize_t i = 0; i < n; i++) {
            for (int j = 0; j < s; j++) {
                o[i * s + j] = (uint8_t)((p[j][i] >> 1) | (p[(j + 1) % s][i] << 7));
            }
        }
    }
}

/* n elements of s planes into o: the vector loops for 2 and 4 planes, the scalar one else. */
static void
interleave_planes(uint8_t *restrict o, const uint8_t **p, int s, Py_ssize_t n)
{
    if (s == 2) {
        interleave_2(o, p[0], p[1], n);
    } else if (s == 4) {
        interleave_4(o, p[0], p[1], p[2], p[3], n);
    } else {
        interleave_any(o, p, s, n);
    }
}

#ifndef BG_KERNELS_ONLY
PyDoc_STRVAR(interleave_doc,
"interleave(out, n, planes): write n elements of len(planes) bytes into out.\n\n"
"Element i is the little-endian word of planes[j][i], rotated right by one bit.");

static PyObject *
interleave(PyObject *self, PyObject *args)
{
    Py_buffer out, bufs[MAX_PLANES];
    const uint8_t *p[MAX_PLANES];
    Py_ssize_t n, s, got = 0;
    PyObject *planes, *result = NULL;

    if (!PyArg_ParseTuple(args, "w*nO", &out, &n, &planes)) {
        return NULL;
    }
    PyObject *seq = PySequence_Fast(planes, "planes must be a sequence");
    if (seq == NULL) {
        PyBuffer_Release(&out);
        return NULL;
    }
    s = PySequence_Fast_GET_SIZE(seq);
    if (n < 0 || s < 1 || s > MAX_PLANES || out.len / s < n) {
        PyErr_SetString(PyExc_ValueError, "interleave: bad sizes");
        goto done;
    }
    for (; got < s; got++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, got), &bufs[got], PyBUF_SIMPLE) < 0) {
            goto done;
        }
        if (bufs[got].len < n) {
            got++;
            PyErr_SetString(PyExc_ValueError, "interleave: a plane is too short");
            goto done;
        }
        p[got] = (const uint8_t *)bufs[got].buf;
    }
    Py_BEGIN_ALLOW_THREADS
    interleave_planes((uint8_t *)out.buf, p, (int)s, n);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
done:
    while (got > 0) {
        PyBuffer_Release(&bufs[--got]);
    }
    Py_DECREF(seq);
    PyBuffer_Release(&out);
    return result;
}
#endif

/* Escape fix-up of packed bytes [k0, k1): each code 15 takes the next escape, in order.
 * Counts past the last escape (writing 0) so the caller can refuse the plane. */
static void
fix_escapes(uint8_t *restrict o, const uint8_t *restrict in, Py_ssize_t k0, Py_ssize_t k1,
            const uint8_t *restrict esc, Py_ssize_t n_esc, Py_ssize_t *used)
{
    for (Py_ssize_t k = k0; k < k1; k++) {
        uint8_t b = in[k];
        if ((b >> 4) == ESCAPE) {
            o[2 * k] = *used < n_esc ? esc[*used] : 0;
            (*used)++;
        }
        if ((b & 15) == ESCAPE) {
            o[2 * k + 1] = *used < n_esc ? esc[*used] : 0;
            (*used)++;
        }
    }
}

/* The table lookup of 16 packed bytes at once: one byte shuffle per nibble (SSSE3's pshufb,
 * checked for at run time as x86-64's baseline is SSE2; NEON's tbl on arm64). Returns how
 * many whole packed bytes it did; the scalar loop does the rest. */
#if BG_SSE2 && (defined(__GNUC__) || defined(__clang__))
#include <tmmintrin.h>
#define BG_SSSE3 1
#define BG_SSSE3_TARGET __attribute__((target("ssse3")))
static int
has_ssse3(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("ssse3");
}
#elif BG_SSE2 && defined(_MSC_VER)
#include <intrin.h>
#include <tmmintrin.h>
#define BG_SSSE3 1
#define BG_SSSE3_TARGET
static int
has_ssse3(void)
{
    int regs[4];
    __cpuid(regs, 1);
    return (regs[2] >> 9) & 1;
}
#endif

#if BG_SSSE3
/* Whether the CPU has the SSSE3 instructions unpair and pair use (set once at import). */
static int vector_ok = 0;

static inline unsigned
lowest_bit(unsigned x)
{
#if defined(_MSC_VER) && !defined(__clang__)
    unsigned long at;
    _BitScanForward(&at, x);
    return (unsigned)at;
#else
    return (unsigned)__builtin_ctz(x);
#endif
}

BG_SSSE3_TARGET static Py_ssize_t
unpair_vector(uint8_t *restrict o, const uint8_t *restrict in, Py_ssize_t full,
              const uint8_t *lookup, const uint8_t *restrict esc, Py_ssize_t n_esc,
              Py_ssize_t *used)
{
    const __m128i table = _mm_loadu_si128((const __m128i *)lookup);
    const __m128i nibble = _mm_set1_epi8(0x0F), escape = _mm_set1_epi8(ESCAPE);
    Py_ssize_t k = 0;
    for (; k + 16 <= full; k += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(in + k));
        __m128i hi = _mm_and_si128(_mm_srli_epi16(x, 4), nibble);
        __m128i lo = _mm_and_si128(x, nibble);
        __m128i vh = _mm_shuffle_epi8(table, hi), vl = _mm_shuffle_epi8(table, lo);
        _mm_storeu_si128((__m128i *)(o + 2 * k), _mm_unpacklo_epi8(vh, vl));
        _mm_storeu_si128((__m128i *)(o + 2 * k + 16), _mm_unpackhi_epi8(vh, vl));
        unsigned high = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(hi, escape));
        unsigned low = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(lo, escape));
        for (unsigned marks = high | low; marks; marks &= marks - 1) {
            unsigned bit = lowest_bit(marks);  /* in order: escapes are consumed in order */
            Py_ssize_t at = 2 * (k + bit);
            if ((high >> bit) & 1) {
                o[at] = *used < n_esc ? esc[*used] : 0;
                (*used)++;
            }
            if ((low >> bit) & 1) {
                o[at + 1] = *used < n_esc ? esc[*used] : 0;
                (*used)++;
            }
        }
    }
    return k;
}
#elif BG_NEON
static Py_ssize_t
unpair_vector(uint8_t *restrict o, const uint8_t *restrict in, Py_ssize_t full,
              const uint8_t *lookup, const uint8_t *restrict esc, Py_ssize_t n_esc,
              Py_ssize_t *used)
{
    const uint8x16_t table = vld1q_u8(lookup);
    const uint8x16_t escape = vdupq_n_u8(ESCAPE);
    Py_ssize_t k = 0;
    for (; k + 16 <= full; k += 16) {
        uint8x16_t x = vld1q_u8(in + k);
        uint8x16_t hi = vshrq_n_u8(x, 4), lo = vandq_u8(x, vdupq_n_u8(0x0F));
        uint8x16x2_t q;
        q.val[0] = vqtbl1q_u8(table, hi);
        q.val[1] = vqtbl1q_u8(table, lo);
        vst2q_u8(o + 2 * k, q);
        if (vmaxvq_u8(vorrq_u8(vceqq_u8(hi, escape), vceqq_u8(lo, escape)))) {
            fix_escapes(o, in, k, k + 16, esc, n_esc, used);
        }
    }
    return k;
}
#endif

/* Expand a pair-coded plane (packed, 4-bit codes high nibble first) into o[:n]: code c < 15
 * is table[c] (0 past the table's table_len <= 15 entries), 15 the next escape. Returns the
 * escapes the codes asked for (more than n_esc: the caller refuses the plane). */
static Py_ssize_t
unpair_plane(uint8_t *restrict o, Py_ssize_t n, const uint8_t *restrict in, const uint8_t *table,
             Py_ssize_t table_len, const uint8_t *restrict esc, Py_ssize_t n_esc)
{
    uint8_t lookup[16];
    uint16_t pairs[256];
    Py_ssize_t used = 0, full = n / 2, k = 0;
    memset(lookup, 0, sizeof lookup);
    memcpy(lookup, table, (size_t)table_len);
    for (int b = 0; b < 256; b++) {
        pairs[b] = (uint16_t)(lookup[b >> 4] | (lookup[b & 15] << 8));
    }
#if BG_SSSE3
    if (vector_ok) {
        k = unpair_vector(o, in, full, lookup, esc, n_esc, &used);
    }
#elif BG_NEON
    k = unpair_vector(o, in, full, lookup, esc, n_esc, &used);
#endif
    for (; k < full; k++) {
        uint16_t v = pairs[in[k]];
        o[2 * k] = (uint8_t)v;
        o[2 * k + 1] = (uint8_t)(v >> 8);
        if (((in[k] >> 4) == ESCAPE) | ((in[k] & 15) == ESCAPE)) {
            fix_escapes(o, in, k, k + 1, esc, n_esc, &used);
        }
    }
    if (n % 2) {  /* the last code is alone; the low nibble is padding */
        uint8_t b = in[full];
        o[n - 1] = lookup[b >> 4];
        if ((b >> 4) == ESCAPE) {
            o[n - 1] = used < n_esc ? esc[used] : 0;
            used++;
        }
    }
    return used;
}

#ifndef BG_KERNELS_ONLY
PyDoc_STRVAR(unpair_doc,
"unpair(out, n, packed, table, escapes) -> int: expand a pair-coded plane into out[:n].\n\n"
"Each packed byte holds two 4-bit codes, high nibble first: code c < 15 is table[c] (0 past\n"
"the table), 15 takes the next of escapes in order. Returns the escapes the codes asked for\n"
"(the caller refuses the plane unless that is len(escapes)).");

static PyObject *
unpair(PyObject *self, PyObject *args)
{
    Py_buffer out, packed, table, escapes;
    Py_ssize_t n, used = 0;
    int ok = 1;

    if (!PyArg_ParseTuple(args, "w*ny*y*y*", &out, &n, &packed, &table, &escapes)) {
        return NULL;
    }
    if (n < 0 || out.len < n || packed.len < (n + 1) / 2 || table.len > ESCAPE) {
        PyErr_SetString(PyExc_ValueError, "unpair: bad sizes");
        ok = 0;
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    used = unpair_plane((uint8_t *)out.buf, n, (const uint8_t *)packed.buf,
                        (const uint8_t *)table.buf, table.len, (const uint8_t *)escapes.buf,
                        escapes.len);
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&escapes);
    PyBuffer_Release(&table);
    PyBuffer_Release(&packed);
    PyBuffer_Release(&out);
    if (!ok) {
        return NULL;
    }
    return PyLong_FromSsize_t(used);
}
#endif

/* ---- Encoding: the reverse loops. ------------------------------------------------------ */

/* Plane j of element i from the input: the little-endian word rotated left by one bit is
 * byte-wise (byte j << 1) | (byte j-1 >> 7), wrapping (byte 0 takes the sign from the top). */
static void
split_any(uint8_t *restrict o, const uint8_t *restrict x, int s, Py_ssize_t n)
{
    for (int j = 0; j < s; j++) {
        uint8_t *restrict p = o + (Py_ssize_t)j * n;
        const int prev = (j + s - 1) % s;
        for (Py_ssize_t i = 0; i < n; i++) {
            p[i] = (uint8_t)((x[i * s + j] << 1) | (x[i * s + prev] >> 7));
        }
    }
}

/* bf16 and fp16; fp32: vectors where the baseline has them (SSE2 on x86-64: rotate the words,
 * then pack byte j of each with saturating packs of values that cannot saturate; NEON's
 * de-interleaving loads on arm64), the scalar loop for the last few elements. */
static void
split_2(uint8_t *restrict p0, uint8_t *restrict p1, const uint8_t *restrict x, Py_ssize_t n)
{
    Py_ssize_t i = 0;
#if BG_SSE2
    const __m128i low = _mm_set1_epi16(0x00FF);
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(x + 2 * i));
        __m128i b = _mm_loadu_si128((const __m128i *)(x + 2 * i + 16));
        a = _mm_or_si128(_mm_slli_epi16(a, 1), _mm_srli_epi16(a, 15));
        b = _mm_or_si128(_mm_slli_epi16(b, 1), _mm_srli_epi16(b, 15));
        _mm_storeu_si128((__m128i *)(p0 + i),
                         _mm_packus_epi16(_mm_and_si128(a, low), _mm_and_si128(b, low)));
        _mm_storeu_si128((__m128i *)(p1 + i),
                         _mm_packus_epi16(_mm_srli_epi16(a, 8), _mm_srli_epi16(b, 8)));
    }
#elif BG_NEON
    for (; i + 16 <= n; i += 16) {
        uint8x16x2_t v = vld2q_u8(x + 2 * i);
        vst1q_u8(p0 + i, vorrq_u8(vshlq_n_u8(v.val[0], 1), vshrq_n_u8(v.val[1], 7)));
        vst1q_u8(p1 + i, vorrq_u8(vshlq_n_u8(v.val[1], 1), vshrq_n_u8(v.val[0], 7)));
    }
#endif
    for (; i < n; i++) {
        p0[i] = (uint8_t)((x[2 * i] << 1) | (x[2 * i + 1] >> 7));
        p1[i] = (uint8_t)((x[2 * i + 1] << 1) | (x[2 * i] >> 7));
    }
}

#if BG_SSE2
static inline __m128i
byte_at(__m128i w, int shift)  /* byte (shift / 8) of each 32-bit word, as a 32-bit value */
{
    return _mm_and_si128(_mm_srli_epi32(w, shift), _mm_set1_epi32(0xFF));
}

static inline __m128i
plane_of(const __m128i w[4], int shift)  /* that byte of 16 words, packed into 16 bytes */
{
    return _mm_packus_epi16(_mm_packs_epi32(byte_at(w[0], shift), byte_at(w[1], shift)),
                            _mm_packs_epi32(byte_at(w[2], shift), byte_at(w[3], shift)));
}
#endif

static void
split_4(uint8_t *restrict p0, uint8_t *restrict p1, uint8_t *restrict p2, uint8_t *restrict p3,
        const uint8_t *restrict x, Py_ssize_t n)
{
    Py_ssize_t i = 0;
#if BG_SSE2
    for (; i + 16 <= n; i += 16) {
        __m128i w[4];
        for (int k = 0; k < 4; k++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(x + 4 * i + 16 * k));
            w[k] = _mm_or_si128(_mm_slli_epi32(v, 1), _mm_srli_epi32(v, 31));
        }
        _mm_storeu_si128((__m128i *)(p0 + i), plane_of(w, 0));
        _mm_storeu_si128((__m128i *)(p1 + i), plane_of(w, 8));
        _mm_storeu_si128((__m128i *)(p2 + i), plane_of(w, 16));
        _mm_storeu_si128((__m128i *)(p3 + i), plane_of(w, 24));
    }
#elif BG_NEON
    for (; i + 16 <= n; i += 16) {
        uint8x16x4_t v = vld4q_u8(x + 4 * i);
        vst1q_u8(p0 + i, vorrq_u8(vshlq_n_u8(v.val[0], 1), vshrq_n_u8(v.val[3], 7)));
        vst1q_u8(p1 + i, vorrq_u8(vshlq_n_u8(v.val[1], 1), vshrq_n_u8(v.val[0], 7)));
        vst1q_u8(p2 + i, vorrq_u8(vshlq_n_u8(v.val[2], 1), vshrq_n_u8(v.val[1], 7)));
        vst1q_u8(p3 + i, vorrq_u8(vshlq_n_u8(v.val[3], 1), vshrq_n_u8(v.val[2], 7)));
    }
#endif
    for (; i < n; i++) {
        const uint8_t *w = x + 4 * i;
        p0[i] = (uint8_t)((w[0] << 1) | (w[3] >> 7));
        p1[i] = (uint8_t)((w[1] << 1) | (w[0] >> 7));
        p2[i] = (uint8_t)((w[2] << 1) | (w[1] >> 7));
        p3[i] = (uint8_t)((w[3] << 1) | (w[2] >> 7));
    }
}

/* The planes of n elements of s bytes into o (plane j at o + j * n): the vector loops for 2
 * and 4 bytes, the scalar one else. */
static void
split_planes(uint8_t *restrict o, const uint8_t *restrict x, int s, Py_ssize_t n)
{
    if (s == 2) {
        split_2(o, o + n, x, n);
    } else if (s == 4) {
        split_4(o, o + n, o + 2 * n, o + 3 * n, x, n);
    } else {
        split_any(o, x, s, n);
    }
}

#ifndef BG_KERNELS_ONLY
PyDoc_STRVAR(split_doc,
"split(out, n, itemsize, data): the planes of n elements of itemsize bytes into out.\n\n"
"Each little-endian word of data is rotated left by one bit; plane j (byte j of every\n"
"element) is written at out[j * n : (j + 1) * n].");

static PyObject *
split(PyObject *self, PyObject *args)
{
    Py_buffer out, data;
    Py_ssize_t n, s;

    if (!PyArg_ParseTuple(args, "w*nny*", &out, &n, &s, &data)) {
        return NULL;
    }
    if (n < 0 || s < 1 || s > MAX_PLANES || out.len / s < n || data.len / s < n) {
        PyErr_SetString(PyExc_ValueError, "split: bad sizes");
        PyBuffer_Release(&data);
        PyBuffer_Release(&out);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    split_planes((uint8_t *)out.buf, (const uint8_t *)data.buf, (int)s, n);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}
#endif

/* Codes of plane bytes [k0, k1) (k1 <= n / 2) packed two to a byte, high nibble first, escapes
 * appended in order. Returns 0, or -1 once there are more escapes than fit. */
static int
pair_scalar(uint8_t *restrict o, const uint8_t *restrict in, Py_ssize_t k0, Py_ssize_t k1,
            const uint8_t *restrict rank, uint8_t *restrict esc, Py_ssize_t cap, Py_ssize_t *used)
{
    for (Py_ssize_t k = k0; k < k1; k++) {
        uint8_t a = in[2 * k], b = in[2 * k + 1];
        uint8_t ca = rank[a], cb = rank[b];
        o[k] = (uint8_t)((ca << 4) | cb);
        if ((ca == ESCAPE) | (cb == ESCAPE)) {
            if (ca == ESCAPE) {
                if (*used >= cap) {
                    return -1;
                }
                esc[(*used)++] = a;
            }
            if (cb == ESCAPE) {
                if (*used >= cap) {
                    return -1;
                }
                esc[(*used)++] = b;
            }
        }
    }
    return 0;
}

/* The rank lookup of 32 plane bytes at once, where the common values have at most MAX_HIGHS
 * distinct high nibbles (an exponent plane's span: two for weights): per high nibble h, one
 * byte shuffle of the 16 codes of values h0..hF by the low nibble, kept where the high nibble
 * is h; every other value is an escape. SSSE3 (checked at run time, as for unpair). Returns
 * how many whole packed bytes it did (the scalar loop does the rest), or -1 as pair_scalar. */
#define MAX_HIGHS 4
#if BG_SSSE3
BG_SSSE3_TARGET static inline __m128i
codes_of(__m128i x, const __m128i *tables, const __m128i *highs, int n_highs)
{
    const __m128i nibble = _mm_set1_epi8(0x0F);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(x, 4), nibble), lo = _mm_and_si128(x, nibble);
    __m128i acc = _mm_setzero_si128(), seen = _mm_setzero_si128();
    for (int h = 0; h < n_highs; h++) {
        __m128i m = _mm_cmpeq_epi8(hi, highs[h]);
        acc = _mm_or_si128(acc, _mm_and_si128(m, _mm_shuffle_epi8(tables[h], lo)));
        seen = _mm_or_si128(seen, m);
    }
    return _mm_or_si128(acc, _mm_andnot_si128(seen, _mm_set1_epi8(ESCAPE)));
}

BG_SSSE3_TARGET static Py_ssize_t
pair_vector(uint8_t *restrict o, const uint8_t *restrict in, Py_ssize_t full,
            const uint8_t *restrict rank, uint8_t *restrict esc, Py_ssize_t cap,
            Py_ssize_t *used)
{
    __m128i tables[MAX_HIGHS], highs[MAX_HIGHS];
    int n_highs = 0;
    for (int h = 0; h < 16; h++) {
        int common = 0;
        for (int l = 0; l < 16; l++) {
            common |= rank[h * 16 + l] != ESCAPE;
        }
        if (!common) {
            continue;
        }
        if (n_highs == MAX_HIGHS) {
            return 0;  /* too spread for shuffles to pay: all scalar */
        }
        tables[n_highs] = _mm_loadu_si128((const __m128i *)(rank + h * 16));
        highs[n_highs++] = _mm_set1_epi8((char)h);
    }
    const __m128i low_byte = _mm_set1_epi16(0x00FF), escape = _mm_set1_epi8(ESCAPE);
    Py_ssize_t k = 0;
    for (; k + 16 <= full; k += 16) {
        __m128i x0 = _mm_loadu_si128((const __m128i *)(in + 2 * k));
        __m128i x1 = _mm_loadu_si128((const __m128i *)(in + 2 * k + 16));
        __m128i c0 = codes_of(x0, tables, highs, n_highs);
        __m128i c1 = codes_of(x1, tables, highs, n_highs);
        /* each 16-bit lane holds an even code (low byte) and the odd one after it */
        __m128i p0 = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(c0, low_byte), 4),
                                  _mm_srli_epi16(c0, 8));
        __m128i p1 = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(c1, low_byte), 4),
                                  _mm_srli_epi16(c1, 8));
        _mm_storeu_si128((__m128i *)(o + k), _mm_packus_epi16(p0, p1));
        unsigned marks = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(c0, escape))
                         | ((unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(c1, escape)) << 16);
        for (; marks; marks &= marks - 1) {  /* in order: escapes are stored in order */
            if (*used >= cap) {
                return -1;
            }
            esc[(*used)++] = in[2 * k + lowest_bit(marks)];
        }
    }
    return k;
}
#endif

/* Code plane in[:n] as 4-bit ranks two a byte into o (escaped values appended to esc, at most
 * cap). Returns the number of escapes, or -1 when there are more than cap. */
static Py_ssize_t
pair_plane(uint8_t *restrict o, uint8_t *restrict esc, Py_ssize_t cap, const uint8_t *restrict in,
           Py_ssize_t n, const uint8_t *restrict r)
{
    Py_ssize_t used = 0, full = n / 2, k = 0;
#if BG_SSSE3
    if (vector_ok) {
        k = pair_vector(o, in, full, r, esc, cap, &used);
    }
#endif
    int status = k < 0 ? -1 : pair_scalar(o, in, k, full, r, esc, cap, &used);
    if (status == 0 && n % 2) {  /* the last code is alone: a 0 low nibble pads it */
        uint8_t a = in[n - 1], ca = r[a];
        o[full] = (uint8_t)(ca << 4);
        if (ca == ESCAPE) {
            if (used >= cap) {
                status = -1;
            } else {
                esc[used++] = a;
            }
        }
    }
    return status < 0 ? -1 : used;
}

#ifndef BG_KERNELS_ONLY
PyDoc_STRVAR(pair_doc,
"pair(packed, escapes, plane, n, rank) -> int: code plane[:n] as 4-bit ranks, two a byte.\n\n"
"Byte v gets code rank[v] (15: escaped, its value appended to escapes in order); codes are\n"
"packed high nibble first into packed[:(n + 1) // 2], an odd last code with a 0 low nibble.\n"
"Returns the number of escapes, or -1 when there are more than len(escapes).");

static PyObject *
pair(PyObject *self, PyObject *args)
{
    Py_buffer packed, escapes, plane, rank;
    Py_ssize_t n, used = 0;

    if (!PyArg_ParseTuple(args, "w*w*y*ny*", &packed, &escapes, &plane, &n, &rank)) {
        return NULL;
    }
    if (n < 0 || plane.len < n || packed.len < (n + 1) / 2 || rank.len != 256) {
        PyErr_SetString(PyExc_ValueError, "pair: bad sizes");
        used = -2;
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    used = pair_plane((uint8_t *)packed.buf, (uint8_t *)escapes.buf, escapes.len,
                      (const uint8_t *)plane.buf, n, (const uint8_t *)rank.buf);
    Py_END_ALLOW_THREADS
done:
    PyBuffer_Release(&rank);
    PyBuffer_Release(&plane);
    PyBuffer_Release(&escapes);
    PyBuffer_Release(&packed);
    if (used == -2) {
        return NULL;
    }
    return PyLong_FromSsize_t(used);
}

static PyMethodDef methods[] = {
    {"interleave", interleave, METH_VARARGS, interleave_doc},
    {"unpair", unpair, METH_VARARGS, unpair_doc},
    {"split", split, METH_VARARGS, split_doc},
    {"pair", pair, METH_VARARGS, pair_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_bytegroup", "The bytegroup codec's byte-plane loops (decode and encode) in C.", -1,
    methods,
};

PyMODINIT_FUNC
PyInit__bytegroup(void)
{
#if BG_SSSE3
    vector_ok = has_ssse3();
#endif
    return PyModule_Create(&module);
}
#endif
