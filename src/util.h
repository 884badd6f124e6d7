/* util.h: memory, containers and hashing shared by every part of ptcc.
 *
 * Arenas own everything a compilation allocates (strings, IR, interned shapes); they are freed
 * in one call.  Vectors are plain {v, n, cap} structs grown with vec_push.  Interning tables map
 * a byte string (or an array of int64 dimensions) to one shared, arena-owned copy, so equal
 * names and shapes compare by pointer.
 */
#ifndef PTCC_UTIL_H
#define PTCC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))
#else
#define PRINTF_LIKE(f, a)
#define NORETURN
#endif

/* Internal errors: a bug in ptcc, never bad input. */
NORETURN void ptcc_die_at(const char *file, int line, const char *fmt, ...) PRINTF_LIKE(3, 4);
#define ptcc_die(...) ptcc_die_at(__FILE__, __LINE__, __VA_ARGS__)
#define unreachable() ptcc_die("unreachable")

void *xmalloc(size_t n);
/* n bytes of file fd from offset at into buf, through short reads and EINTR: how many it read
 * (fewer than n where the file ends), or -1 with errno set. */
ssize_t pread_full(int fd, void *buf, size_t n, uint64_t at);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);

/* Arena: bump allocation in large blocks; everything is freed by arena_free. */
typedef struct ArenaBlock ArenaBlock;
typedef struct Arena {
	char *p, *end;
	ArenaBlock *blocks;
	size_t used; /* bytes handed out, for statistics */
} Arena;

/* 8-byte aligned; zero, as the arena's blocks come zeroed from mmap and calloc and nothing is
 * handed out twice (net_floats relies on it; code that must not depend on it uses zalloc) */
void *arena_alloc(Arena *a, size_t n);
void *arena_zalloc(Arena *a, size_t n); /* zeroed */
char *arena_strndup(Arena *a, const char *s, size_t n);
void arena_free(Arena *a);
/* n bytes or more of zero memory on whole 2 MiB pages, transparent huge pages where the kernel has
 * them: on a VM where the first touch of each 4 KiB page costs 8 to 14 us (a shadow page table's
 * fault, MADV_POPULATE_WRITE or not), one fault per 2 MiB instead of 512; where it has none, 4 KiB
 * pages as before.  munmap(p, huge_length(n)) gives it back. */
enum { HUGE_PAGE = 2 << 20 };
static inline size_t
huge_length(size_t n)
{
	return (n + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
}
void *map_huge(size_t n);
#define NEW(a, T) ((T *)arena_zalloc((a), sizeof(T)))
#define NEWARRAY(a, T, n) ((T *)arena_alloc((a), sizeof(T) * (size_t)(n)))

/* Vector of T: VEC(T) v = {0}; vec_push(&v, x); free(v.v). */
#define VEC(T) struct { T *v; size_t n, cap; }
/* The first block holds 64 bytes' worth (one element if larger): a net has several small
 * vectors per layer (bottoms, tops, weights), and 16 Weights a layer cost 1.4 KB each. */
#define VEC_FIRST(vp) (sizeof *(vp)->v < 64 ? 64 / sizeof *(vp)->v : 1)
#define vec_grow(vp)                                                              \
	do {                                                                      \
		if ((vp)->n == (vp)->cap) {                                       \
			(vp)->cap = (vp)->cap ? 2 * (vp)->cap : VEC_FIRST(vp);    \
			(vp)->v = xrealloc((vp)->v, (vp)->cap * sizeof *(vp)->v); \
		}                                                                 \
	} while (0)
#define vec_push(vp, x)                   \
	do {                              \
		vec_grow(vp);             \
		(vp)->v[(vp)->n++] = (x); \
	} while (0)

/* vec_push for a vector in an arena, never freed: from 1 element, doubling, each copy left
 * behind in the arena (the net's layers have a few bottoms, tops and weights each, and one malloc
 * per vector cost more than the layer). */
#define arena_vec_push(a, vp, x)                                                        \
	do {                                                                            \
		if ((vp)->n == (vp)->cap) {                                             \
			size_t cap_ = (vp)->cap ? 2 * (vp)->cap : 1;                    \
			void *v_ = arena_alloc((a), cap_ * sizeof *(vp)->v);            \
			if ((vp)->n)                                                    \
				memcpy(v_, (vp)->v, (vp)->n * sizeof *(vp)->v);         \
			(vp)->v = v_;                                                   \
			(vp)->cap = cap_;                                               \
		}                                                                       \
		(vp)->v[(vp)->n++] = (x);                                               \
	} while (0)

/* The elements from index `from` on (a parser's open list), or NULL when there are none: a
 * vector that never grew has v == NULL, and NULL + from is undefined even when from is 0. */
#define vec_from(vp, from) ((vp)->n > (from) ? (vp)->v + (from) : NULL)

uint64_t hash_bytes(const void *p, size_t n);

/* Interning table of byte strings (NUL-terminated copies in the arena). */
typedef struct InternEntry {
	uint32_t hash, len;
	const char *s;
} InternEntry;
typedef struct Intern {
	InternEntry *tab;
	size_t n, cap;
	Arena *arena;
} Intern;
const char *intern(Intern *t, const char *s, size_t len);
void intern_free(Intern *t);

/* Interning table of arrays of 64-bit words (shapes, scalar lists). */
typedef struct WordEntry {
	uint64_t hash;
	const void *p;
	size_t nbytes;
} WordEntry;
typedef struct WordIntern {
	WordEntry *tab;
	size_t n, cap;
	Arena *arena;
} WordIntern;
const void *intern_words(WordIntern *t, const void *p, size_t nbytes);
void word_intern_free(WordIntern *t);

/* Map from a 64-bit key (never UINT64_MAX) to a pointer, open addressing. */
typedef struct MapEntry {
	uint64_t key;
	void *val;
} MapEntry;
typedef struct Map {
	MapEntry *tab;
	size_t n, cap;
} Map;
void *map_get(const Map *m, uint64_t key);
void map_put(Map *m, uint64_t key, void *val);
void map_free(Map *m);

/* Levenshtein distance, capped: returns > cap as soon as the distance exceeds cap. */
size_t edit_distance(const char *a, const char *b, size_t cap);

/* Checked 64-bit arithmetic: false on overflow, *r then unspecified.  Sizes, indices and counts
 * that come from a trace can be anything up to INT64_MAX, so every sum and product of them goes
 * through these (signed overflow is undefined behaviour, and a wrapped size passes checks). */
static inline bool
ck_mul(int64_t a, int64_t b, int64_t *r)
{
	return !__builtin_mul_overflow(a, b, r);
}
static inline bool
ck_add(int64_t a, int64_t b, int64_t *r)
{
	return !__builtin_add_overflow(a, b, r);
}
static inline bool
ck_sub(int64_t a, int64_t b, int64_t *r)
{
	return !__builtin_sub_overflow(a, b, r);
}
/* ceil(a / b) for a >= 0, b > 0, without the overflow of (a + b - 1) / b */
static inline int64_t
ceil_div(int64_t a, int64_t b)
{
	return a / b + (a % b != 0);
}

#endif
