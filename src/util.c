/* util.c: arena, vectors, interning, maps. */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

ssize_t
pread_full(int fd, void *buf, size_t n, uint64_t at)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(at + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

void
ptcc_die_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ptcc: internal error at %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fputs("ptcc: out of memory\n", stderr);
		exit(2);
	}
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p) {
		fputs("ptcc: out of memory\n", stderr);
		exit(2);
	}
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fputs("ptcc: out of memory\n", stderr);
		exit(2);
	}
	return p;
}

/* Arena blocks: a header followed by the space handed out. */
struct ArenaBlock {
	ArenaBlock *next;
	size_t size;   /* bytes after the header */
	size_t maplen; /* an mmap'ed block's length; 0 if malloc'ed */
};

/* 4 MiB blocks from mmap, prefaulted 1 MiB at a time as the bump pointer reaches them (one system
 * call instead of 256 page faults).  Not transparent huge pages: on this project's VMs their cost
 * swings by 20x with the host's state, which made the benchmark's timings erratic (a request of
 * 2 MiB or more, whose pages are all written, has huge pages: huge_block).  a->end is the end of
 * the prefaulted part of the current block. */
enum { ARENA_BLOCK = 4 << 20, ARENA_STEP = 1 << 20 };

static void
prefault(void *p, size_t n)
{
#ifdef MADV_POPULATE_WRITE
	madvise(p, n, MADV_POPULATE_WRITE); /* an old kernel refuses: the pages fault in as used */
#else
	(void)p;
	(void)n;
#endif
}

void *
map_huge(size_t n)
{
	size_t len = huge_length(n), head;
	char *m = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	if (m == MAP_FAILED) {
		fputs("ptcc: out of memory\n", stderr);
		exit(2);
	}
	/* aligned to 2 MiB, the rest of the mapping given back */
	head = (size_t)(-(uintptr_t)m & (HUGE_PAGE - 1));
	if (head)
		munmap(m, head);
	if (HUGE_PAGE - head)
		munmap(m + head + len, HUGE_PAGE - head);
#ifdef MADV_HUGEPAGE
	madvise(m + head, len, MADV_HUGEPAGE); /* refused (no THP): 4 KiB pages */
#endif
	return m + head;
}

/* A block of n bytes or more on huge pages (-O2's folded weights, a big constant): zero without
 * being touched, as calloc's. */
static ArenaBlock *
huge_block(size_t n)
{
	ArenaBlock *b = map_huge(n);

	b->maplen = huge_length(n);
	return b;
}

static ArenaBlock *
block_new(size_t size)
{
	ArenaBlock *b;

	if (sizeof(ArenaBlock) + size == ARENA_BLOCK) {
		void *p = mmap(NULL, ARENA_BLOCK, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			fputs("ptcc: out of memory\n", stderr);
			exit(2);
		}
		prefault(p, ARENA_STEP);
		b = p;
		b->maplen = ARENA_BLOCK;
	} else if (sizeof *b + size >= HUGE_PAGE) {
		b = huge_block(sizeof *b + size);
	} else {
		/* calloc: fresh pages from the kernel, zero without being touched (see
		 * arena_alloc in util.h) */
		b = xcalloc(1, sizeof *b + size);
		b->maplen = 0;
	}
	b->size = size;
	return b;
}

void *
arena_alloc(Arena *a, size_t n)
{
	char *p;

	n = (n + 7) & ~(size_t)7;
	while ((size_t)(a->end - a->p) < n) {
		ArenaBlock *cur = a->blocks;
		size_t size;
		ArenaBlock *b;

		if (cur && cur->maplen && a->end < (char *)(cur + 1) + cur->size &&
		    (size_t)((char *)(cur + 1) + cur->size - a->p) >= n) {
			/* the current block has room not yet prefaulted */
			size_t step = (size_t)((char *)(cur + 1) + cur->size - a->end);

			if (step > ARENA_STEP)
				step = ARENA_STEP;
			prefault(a->end, step);
			a->end += step;
			continue;
		}
		size = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK - sizeof(ArenaBlock);
		b = block_new(size);
		if (n > ARENA_BLOCK / 4 && a->blocks) {
			/* A big request gets its own block; keep bumping in the current one. */
			b->next = a->blocks->next;
			a->blocks->next = b;
			a->used += n;
			return b + 1;
		}
		b->next = a->blocks;
		a->blocks = b;
		a->p = (char *)(b + 1);
		a->end = b->maplen ? (char *)b + ARENA_STEP : a->p + size;
	}
	p = a->p;
	a->p += n;
	a->used += n;
	return p;
}

void *
arena_zalloc(Arena *a, size_t n)
{
	return memset(arena_alloc(a, n), 0, n);
}

char *
arena_strndup(Arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

void
arena_free(Arena *a)
{
	ArenaBlock *b, *next;

	for (b = a->blocks; b; b = next) {
		next = b->next;
		if (b->maplen)
			munmap(b, b->maplen);
		else
			free(b);
	}
	memset(a, 0, sizeof *a);
}

static inline uint64_t
rd64(const unsigned char *p)
{
	uint64_t w;

	memcpy(&w, p, 8);
	return w;
}

static inline uint64_t
rd32(const unsigned char *p)
{
	uint32_t w;

	memcpy(&w, p, 4);
	return w;
}

/* 64x64 -> 128-bit multiply, folded: the mixing step of wyhash. */
static inline uint64_t
mix(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* A wyhash-style hash: whole words (overlapping loads at the ends), never a loop over bytes;
 * names of up to 16 bytes, the common case, take two loads and two multiplies. */
uint64_t
hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t a, b, seed = 0x243f6a8885a308d3u ^ n;

	if (n <= 16) {
		if (n >= 8) {
			a = rd64(s);
			b = rd64(s + n - 8);
		} else if (n >= 4) {
			a = rd32(s);
			b = rd32(s + n - 4);
		} else if (n > 0) {
			a = ((uint64_t)s[0] << 16) | ((uint64_t)s[n >> 1] << 8) | s[n - 1];
			b = 0;
		} else
			a = b = 0;
	} else {
		const unsigned char *q = s;
		size_t i = n;

		for (; i > 16; i -= 16, q += 16)
			seed = mix(rd64(q) ^ 0xa0761d6478bd642fu, rd64(q + 8) ^ seed);
		a = rd64(s + n - 16);
		b = rd64(s + n - 8);
	}
	return mix(0xe7037ed1a0b428dbu ^ n, mix(a ^ 0xa0761d6478bd642fu, b ^ seed));
}

/* Equal byte strings of length n, by whole-word loads (the last one overlapping). */
static inline bool
bytes_equal(const void *x, const void *y, size_t n)
{
	const unsigned char *a = x, *b = y;
	size_t i;

	if (n < 8) {
		if (n >= 4)
			return rd32(a) == rd32(b) && rd32(a + n - 4) == rd32(b + n - 4);
		for (i = 0; i < n; i++)
			if (a[i] != b[i])
				return false;
		return true;
	}
	for (i = 0; i + 8 < n; i += 8)
		if (rd64(a + i) != rd64(b + i))
			return false;
	return rd64(a + n - 8) == rd64(b + n - 8);
}

/* Hash tables of 2 MiB and more come straight from mmap (already zero), prefaulted in one system
 * call rather than thousands of page faults as the rehash touches them in random order (a trace
 * with 10^5 distinct scope names grows its name table to megabytes). */
enum { TABLE_HUGE = 2 << 20 };

static size_t
table_bytes(size_t bytes)
{
	return bytes < TABLE_HUGE ? bytes : (bytes + TABLE_HUGE - 1) & ~(size_t)(TABLE_HUGE - 1);
}

static void *
table_alloc(size_t bytes)
{
	size_t len = table_bytes(bytes);
	void *p;

	if (len < TABLE_HUGE)
		return xcalloc(1, len);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		fputs("ptcc: out of memory\n", stderr);
		exit(2);
	}
	prefault(p, len);
	return p;
}

static void
table_free(void *p, size_t bytes)
{
	size_t len = table_bytes(bytes);

	if (!p)
		return;
	if (len < TABLE_HUGE)
		free(p);
	else
		munmap(p, len);
}

static void
intern_grow(Intern *t)
{
	size_t cap = t->cap ? 2 * t->cap : 1024, i;
	InternEntry *tab = table_alloc(cap * sizeof *tab);

	for (i = 0; i < t->cap; i++) {
		InternEntry *e = &t->tab[i];
		size_t j;

		if (!e->s)
			continue;
		for (j = e->hash & (cap - 1); tab[j].s; j = (j + 1) & (cap - 1))
			;
		tab[j] = *e;
	}
	table_free(t->tab, t->cap * sizeof *t->tab);
	t->tab = tab;
	t->cap = cap;
}

const char *
intern(Intern *t, const char *s, size_t len)
{
	uint32_t h;
	size_t j;

	if (2 * (t->n + 1) > t->cap)
		intern_grow(t);
	h = (uint32_t)hash_bytes(s, len);
	for (j = h & (t->cap - 1); t->tab[j].s; j = (j + 1) & (t->cap - 1)) {
		InternEntry *e = &t->tab[j];

		if (e->hash == h && e->len == len && bytes_equal(e->s, s, len))
			return e->s;
	}
	if (len > UINT32_MAX)
		ptcc_die("interning a string of %zu bytes", len);
	t->tab[j].hash = h;
	t->tab[j].len = (uint32_t)len;
	t->tab[j].s = arena_strndup(t->arena, s, len);
	t->n++;
	return t->tab[j].s;
}

void
intern_free(Intern *t)
{
	table_free(t->tab, t->cap * sizeof *t->tab);
	t->tab = NULL;
	t->n = t->cap = 0;
}

static void
words_grow(WordIntern *t)
{
	size_t cap = t->cap ? 2 * t->cap : 256, i;
	WordEntry *tab = table_alloc(cap * sizeof *tab);

	for (i = 0; i < t->cap; i++) {
		WordEntry *e = &t->tab[i];
		size_t j;

		if (!e->p)
			continue;
		for (j = e->hash & (cap - 1); tab[j].p; j = (j + 1) & (cap - 1))
			;
		tab[j] = *e;
	}
	table_free(t->tab, t->cap * sizeof *t->tab);
	t->tab = tab;
	t->cap = cap;
}

const void *
intern_words(WordIntern *t, const void *p, size_t nbytes)
{
	uint64_t h = hash_bytes(p, nbytes);
	size_t j;
	void *copy;

	if (2 * (t->n + 1) > t->cap)
		words_grow(t);
	for (j = h & (t->cap - 1); t->tab[j].p; j = (j + 1) & (t->cap - 1)) {
		WordEntry *e = &t->tab[j];

		if (e->hash == h && e->nbytes == nbytes && bytes_equal(e->p, p, nbytes))
			return e->p;
	}
	copy = arena_alloc(t->arena, nbytes ? nbytes : 8);
	if (nbytes)
		memcpy(copy, p, nbytes);
	t->tab[j].hash = h;
	t->tab[j].nbytes = nbytes;
	t->tab[j].p = copy;
	t->n++;
	return copy;
}

void
word_intern_free(WordIntern *t)
{
	table_free(t->tab, t->cap * sizeof *t->tab);
	t->tab = NULL;
	t->n = t->cap = 0;
}

static size_t
map_slot(uint64_t key, size_t cap)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdu;
	key ^= key >> 33;
	return key & (cap - 1);
}

void *
map_get(const Map *m, uint64_t key)
{
	size_t j;

	if (!m->cap)
		return NULL;
	for (j = map_slot(key, m->cap); m->tab[j].key != UINT64_MAX; j = (j + 1) & (m->cap - 1))
		if (m->tab[j].key == key)
			return m->tab[j].val;
	return NULL;
}

void
map_put(Map *m, uint64_t key, void *val)
{
	size_t j;

	if (2 * (m->n + 1) > m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 64, i;
		MapEntry *tab = xmalloc(cap * sizeof *tab);

		for (i = 0; i < cap; i++)
			tab[i].key = UINT64_MAX;
		for (i = 0; i < m->cap; i++) {
			if (m->tab[i].key == UINT64_MAX)
				continue;
			for (j = map_slot(m->tab[i].key, cap); tab[j].key != UINT64_MAX;
			     j = (j + 1) & (cap - 1))
				;
			tab[j] = m->tab[i];
		}
		free(m->tab);
		m->tab = tab;
		m->cap = cap;
	}
	for (j = map_slot(key, m->cap); m->tab[j].key != UINT64_MAX; j = (j + 1) & (m->cap - 1))
		if (m->tab[j].key == key) {
			m->tab[j].val = val;
			return;
		}
	m->tab[j].key = key;
	m->tab[j].val = val;
	m->n++;
}

void
map_free(Map *m)
{
	free(m->tab);
	m->tab = NULL;
	m->n = m->cap = 0;
}

size_t
edit_distance(const char *a, const char *b, size_t cap)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[64], prev[64];

	if (lb >= 63 || la >= 63)
		return cap + 1;
	if ((la > lb ? la - lb : lb - la) > cap)
		return cap + 1;
	for (j = 0; j <= lb; j++)
		prev[j] = j;
	for (i = 1; i <= la; i++) {
		size_t best;

		row[0] = i;
		best = row[0];
		for (j = 1; j <= lb; j++) {
			size_t d = prev[j - 1] + (a[i - 1] != b[j - 1]);

			if (prev[j] + 1 < d)
				d = prev[j] + 1;
			if (row[j - 1] + 1 < d)
				d = row[j - 1] + 1;
			row[j] = d;
			if (d < best)
				best = d;
		}
		if (best > cap)
			return cap + 1;
		memcpy(prev, row, (lb + 1) * sizeof *row);
	}
	return prev[lb];
}
