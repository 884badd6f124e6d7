/* copypass.c: the weights read once, on every core: checked, and copied into the output.
 *
 * A caffemodel's float32 payloads are the input's bytes as they lie in the weights file (or an
 * ONNX model, or its external data).  codegen hands outfile_copy_range a pointer into an input's
 * mapping; the range is not written then but deferred: the output skips its length (a hole that
 * the framing after it goes beyond) and the weights pass, which starts with the first such range,
 * copies it into its place while codegen goes on with the framing and the prototxt.  The pass
 * reads each range from its file in 512 KiB pieces into a buffer, lets the value check
 * (valuecheck.c) look at the piece there when the range is a tensor it has to check, and writes
 * the piece into the hole with pwrite.  Each thread takes the next piece; once the net is
 * written, the main thread joins in, and the tensors no output holds verbatim are read for the
 * check alone.  Measured on resnet50's 98 MiB on a 2-core VM, its caffemodel's ranges replayed
 * (copy and check of every value together, medians of 31 runs, one series):
 *
 *     splice through a 1 MiB pipe, and the check's own pread on a second thread   35.3 ms
 *     the weights pass, 2 threads                                                    29.6 ms
 *
 * and the whole compile against cp of the weights file: `make bench-compile`.
 *
 * A page of the mapping is never touched (on a VM the first touch of each mapped page costs more
 * than a copy, and reading through the mapping costs three times a pread), and a file that shrank
 * shows as a short read, not a SIGBUS.  Ranges under 16 KiB (BatchNorm's statistics) are read
 * into stdio's buffer at once instead, and checked there: a hole costs two system calls more.  With
 * PTCC_NO_COPY_PASS=1 the caller writes every range from the mapping as it comes: the same bytes
 * either way (tests/io).
 *
 * Two writers into one file take turns (the file system holds the inode's lock for each write);
 * the threads gain by reading and checking while another writes.  A ring that hands pieces from
 * readers to one writer was slower (each piece crosses between the cores' caches).
 */
#include "ptcc.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum {
	PIECE = 512 << 10,    /* stays in the cache between read and write; whole elements */
	DEFER_MIN = 16 << 10, /* smaller ranges are read at once */
	MAX_THREADS = 4,      /* the writes take turns: more readers gain nothing */
	THREAD_MIN = 1 << 20, /* helpers start once this much is queued; a small net needs none */
	BUFFERS = MAX_THREADS * PIECE,
};
_Static_assert((size_t)BUFFERS <= (size_t)HUGE_PAGE, "the threads' buffers exceed a huge page");

/* A helper thread's pass and its buffer's slot. */
typedef struct Helper {
	Pass *p;
	int slot;
} Helper;

struct Pass {
	pthread_mutex_t lock;
	pthread_cond_t more;   /* an item added, the last one added, or stopped */
	VEC(PassItem) items;
	size_t cur;            /* the next piece: item cur, from byte cur_off */
	uint64_t cur_off, queued;
	bool closed, stopped;
	int read_error, write_error; /* the first of each: an errno, or -1 for a file that shrank */
	int out;               /* the output's descriptor, or -1: nothing is copied */
	pthread_t helper[MAX_THREADS - 1];
	Helper slots[MAX_THREADS - 1];
	int helpers, want;     /* started; to start once THREAD_MIN bytes are queued */
	/* the threads' buffers, PIECE each, from the first helper on: in one huge page (map_huge),
	 * 0.2 ms to fault in where two threads' 512 KiB of 4 KiB pages cost 2.5 ms on a VM */
	unsigned char *bufs;
};

Pass *
pass_new(OutFile *o)
{
	Pass *p = xcalloc(1, sizeof *p);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->more, NULL);
	p->out = o ? fileno(o->fp) : -1;
	p->want = cpus < 2 ? 0 : cpus > MAX_THREADS ? MAX_THREADS - 1 : (int)cpus - 1;
	return p;
}

/* Stop every thread after the piece it has, keeping the first error of its kind. */
static void
stop(Pass *p, int *error, int err)
{
	pthread_mutex_lock(&p->lock);
	if (!*error)
		*error = err;
	p->stopped = true;
	pthread_cond_broadcast(&p->more);
	pthread_mutex_unlock(&p->lock);
}

static bool
read_piece(Pass *p, const PassItem *it, uint64_t off, unsigned char *buf, size_t len)
{
	ssize_t r = pread_full(it->fd, buf, len, it->at + off);

	if (r == (ssize_t)len)
		return true;
	stop(p, &p->read_error, r < 0 ? errno : -1); /* short: the file ends before its mapping */
	return false;
}

static bool
write_piece(Pass *p, const unsigned char *bytes, size_t len, off_t to)
{
	for (size_t done = 0; done < len;) {
		ssize_t w = pwrite(p->out, bytes + done, len - done, to + (off_t)done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) { /* ENOSPC, EIO, EFBIG: outfile_close says it */
			stop(p, &p->write_error, w < 0 ? errno : EIO);
			return false;
		}
		done += (size_t)w;
	}
	return true;
}

/* The next piece: *it its item, [off, off + *len) of it; false when there is none to come. */
static bool
take(Pass *p, PassItem *it, uint64_t *off, size_t *len)
{
	bool got = false;

	pthread_mutex_lock(&p->lock);
	while (!p->stopped && p->cur == p->items.n && !p->closed)
		pthread_cond_wait(&p->more, &p->lock);
	if (!p->stopped && p->cur < p->items.n) {
		*it = p->items.v[p->cur];
		*off = p->cur_off;
		*len = it->len - *off < PIECE ? (size_t)(it->len - *off) : PIECE;
		p->cur_off += *len;
		if (p->cur_off == it->len) {
			p->cur++;
			p->cur_off = 0;
		}
		got = true;
	}
	pthread_mutex_unlock(&p->lock);
	return got;
}

/* One thread's pieces, into buffer `slot` of p->bufs (0 is the main thread's), or into a buffer
 * of its own when the pass has no helpers. */
static void
work_in(Pass *p, int slot)
{
	unsigned char *own = p->bufs ? NULL : xmalloc(PIECE);
	unsigned char *buf = own ? own : p->bufs + (size_t)slot * PIECE;
	PassItem it;
	uint64_t off;
	size_t len;

	while (take(p, &it, &off, &len)) {
		const unsigned char *bytes = it.data + off;

		if (it.fd >= 0) {
			if (!read_piece(p, &it, off, buf, len))
				break;
			bytes = buf;
		}
		if (it.scan)
			value_scan_piece(it.scan, bytes, (int64_t)(off / (uint64_t)it.elem),
					 (int64_t)(len / (size_t)it.elem));
		if (it.to >= 0 && !write_piece(p, bytes, len, it.to + (off_t)off))
			break;
	}
	free(own);
}

static void *
work(void *arg)
{
	Helper *h = arg;

	work_in(h->p, h->slot);
	return NULL;
}

void
pass_add(Pass *p, PassItem it)
{
	if (!it.len)
		return;
	pthread_mutex_lock(&p->lock);
	vec_push(&p->items, it);
	p->queued += it.len;
	pthread_cond_signal(&p->more);
	pthread_mutex_unlock(&p->lock);
	/* a helper that cannot be started leaves its share to the main thread */
	while (p->queued >= THREAD_MIN && p->helpers < p->want) {
		if (!p->bufs)
			p->bufs = map_huge(BUFFERS);
		Helper *h = &p->slots[p->helpers];

		*h = (Helper){p, p->helpers + 1};
		if (pthread_create(&p->helper[p->helpers], NULL, work, h) != 0) {
			p->want = p->helpers;
			break;
		}
		p->helpers++;
	}
}

bool
pass_finish(Pass *p, bool cancel, int *read_error, int *write_error)
{
	bool ok;

	pthread_mutex_lock(&p->lock);
	p->closed = true;
	p->stopped |= cancel;
	pthread_cond_broadcast(&p->more);
	pthread_mutex_unlock(&p->lock);
	work_in(p, 0);
	while (p->helpers)
		pthread_join(p->helper[--p->helpers], NULL);
	if (p->bufs)
		munmap(p->bufs, huge_length(BUFFERS));
	*read_error = p->read_error;
	*write_error = p->write_error;
	ok = !p->read_error && !p->write_error;
	pthread_cond_destroy(&p->more);
	pthread_mutex_destroy(&p->lock);
	free(p->items.v);
	free(p);
	return ok;
}

PassItem
pass_item(const void *data, uint64_t len)
{
	PassItem it = {.data = data, .len = len, .elem = 1, .to = -1};

	if (!mapping_source(data, (size_t)len, &it.fd, &it.at))
		it.fd = -1;
	return it;
}

/* ---- the output's side ----------------------------------------------------------------------- */

void
copypass_init(OutFile *o)
{
	const char *off = getenv("PTCC_NO_COPY_PASS");

	o->no_pass = off && *off && strcmp(off, "0") != 0;
	o->pass = NULL;
	o->copied = 0;
}

bool
copypass_finish(OutFile *o, bool cancel)
{
	int rerr, werr;

	if (!o->pass)
		return true;
	bool ok = pass_finish(o->pass, cancel, &rerr, &werr);

	o->pass = NULL;
	if (cancel)
		return ok;
	if (rerr)
		value_check_failed(o->c, rerr);
	/* an output a read stopped is incomplete: a file that shrank is EFAULT, as a write()
	 * from a page its file lost, which outfile_close reports as that */
	if (!o->error && !ok)
		o->error = werr ? werr : rerr < 0 ? EFAULT : rerr;
	return ok;
}

/* [at, at + len) of file fd (p in its mapping), read into stdio's buffer and checked on the way
 * when it is a tensor the value check has yet to read. */
static size_t
read_small(OutFile *o, const void *p, int fd, uint64_t at, size_t len)
{
	unsigned char buf[DEFER_MIN];
	ValueScan *s;
	int elem;
	ssize_t r = pread_full(fd, buf, len, at);

	if (r != (ssize_t)len) { /* short: the file shrank (EFAULT, as a write from a lost page) */
		o->error = r < 0 ? errno : EFAULT;
		return len;
	}
	if ((s = value_check_claim(o->c, p, len, &elem)))
		value_scan_piece(s, buf, 0, (int64_t)(len / (size_t)elem));
	if (fwrite(buf, 1, len, o->fp) != len)
		o->error = errno ? errno : EIO;
	return len;
}

size_t
outfile_copy_range(OutFile *o, const void *p, size_t len)
{
	PassItem it;
	off_t to;

	if (o->no_pass || o->error || (it = pass_item(p, len)).fd < 0)
		return 0;
	if (len < DEFER_MIN)
		return read_small(o, p, it.fd, it.at, len);
	/* flushed, so that the position is the file's; a stream that cannot seek writes it */
	if (fflush(o->fp) != 0 || (to = ftello(o->fp)) < 0 ||
	    fseeko(o->fp, (off_t)len, SEEK_CUR) != 0)
		return 0;
	it.to = to;
	it.scan = value_check_claim(o->c, p, len, &it.elem);
	if (!o->pass)
		o->pass = pass_new(o);
	pass_add(o->pass, it);
	o->copied += len;
	return len;
}
