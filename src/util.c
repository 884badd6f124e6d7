/* util.c: arena, vectors, interning, maps. */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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
	size_t size;
};

/* 4 MiB blocks, 2 MiB aligned and marked for transparent huge pages: a large trace then takes far
 * fewer page faults. */
enum { ARENA_BLOCK = 4 << 20, ARENA_ALIGN = 2 << 20 };

static ArenaBlock *
block_new(size_t size)
{
	ArenaBlock *b;

	if (sizeof(ArenaBlock) + size == ARENA_BLOCK) {
		void *p = NULL;

		if (posix_memalign(&p, ARENA_ALIGN, ARENA_BLOCK) != 0 || !p) {
			fputs("ptcc: out of memory\n", stderr);
			exit(2);
		}
#ifdef MADV_HUGEPAGE
		madvise(p, ARENA_BLOCK, MADV_HUGEPAGE);
#endif
		b = p;
	} else
		b = xmalloc(sizeof *b + size);
	b->size = size;
	return b;
}

void *
arena_alloc(Arena *a, size_t n)
{
	char *p;

	n = (n + 7) & ~(size_t)7;
	if ((size_t)(a->end - a->p) < n) {
		size_t size = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK - sizeof(ArenaBlock);
		ArenaBlock *b = block_new(size);

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
		a->end = a->p + size;
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
		free(b);
	}
	memset(a, 0, sizeof *a);
}

/* FNV-1a over 8-byte words where possible, then a final mix. */
uint64_t
hash_bytes(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325u;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, s + i, 8);
		h = (h ^ w) * 0x100000001b3u;
		h ^= h >> 29;
	}
	for (; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3u;
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93u;
	h ^= h >> 32;
	return h;
}

static void
intern_grow(Intern *t)
{
	size_t cap = t->cap ? 2 * t->cap : 1024, i;
	InternEntry *tab = xcalloc(cap, sizeof *tab);

	for (i = 0; i < t->cap; i++) {
		InternEntry *e = &t->tab[i];
		size_t j;

		if (!e->s)
			continue;
		for (j = e->hash & (cap - 1); tab[j].s; j = (j + 1) & (cap - 1))
			;
		tab[j] = *e;
	}
	free(t->tab);
	t->tab = tab;
	t->cap = cap;
}

/* Short names (op names, keywords, most parameter names) hash from two overlapping 8-byte loads. */
static inline uint64_t
hash_name(const char *s, size_t len)
{
	uint64_t a, b;

	if (len < 8 || len > 16)
		return hash_bytes(s, len);
	memcpy(&a, s, 8);
	memcpy(&b, s + len - 8, 8);
	a = (a ^ (b * 0x9e3779b97f4a7c15u) ^ len) * 0xd6e8feb86659fd93u;
	return a ^ (a >> 32);
}

const char *
intern(Intern *t, const char *s, size_t len)
{
	uint64_t h = hash_name(s, len);
	size_t j;

	if (2 * (t->n + 1) > t->cap)
		intern_grow(t);
	for (j = h & (t->cap - 1); t->tab[j].s; j = (j + 1) & (t->cap - 1)) {
		InternEntry *e = &t->tab[j];

		if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0)
			return e->s;
	}
	t->tab[j].hash = h;
	t->tab[j].len = len;
	t->tab[j].s = arena_strndup(t->arena, s, len);
	t->n++;
	return t->tab[j].s;
}

void
intern_free(Intern *t)
{
	free(t->tab);
	t->tab = NULL;
	t->n = t->cap = 0;
}

static void
words_grow(WordIntern *t)
{
	size_t cap = t->cap ? 2 * t->cap : 256, i;
	WordEntry *tab = xcalloc(cap, sizeof *tab);

	for (i = 0; i < t->cap; i++) {
		WordEntry *e = &t->tab[i];
		size_t j;

		if (!e->p)
			continue;
		for (j = e->hash & (cap - 1); tab[j].p; j = (j + 1) & (cap - 1))
			;
		tab[j] = *e;
	}
	free(t->tab);
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

		if (e->hash == h && e->nbytes == nbytes && memcmp(e->p, p, nbytes) == 0)
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
	free(t->tab);
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
			for (j = map_slot(m->tab[i].key, cap); tab[j].key != UINT64_MAX; j = (j + 1) & (cap - 1))
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
