/* kcopy.c: weights copied into an output by the kernel, never through ptcc's memory.
 *
 * A caffemodel's float32 payloads are the input's bytes as they lie in the weights file (or an
 * ONNX model, or its external data): codegen hands outfile_copy_range a pointer into an input's
 * mapping, and the bytes go from that file to the output inside the kernel.  Measured on
 * resnet50's 98 MiB on a 2-core VM, between the framing ptcc writes:
 *
 *     write() from the mapping            89 ms   (the first touch of each mapped page is dear)
 *     copy_file_range                     40 ms   (cp's own copy of the whole file: 32 ms)
 *     splice through a 1 MiB pipe         31 ms
 *
 * copy_file_range on a file system without reflinks is a splice through a 64 KiB pipe, and with
 * the payloads at offsets the framing leaves unaligned, each 16-page round ends in a page written
 * twice; one 1 MiB pipe per output makes that 256 pages a round.  Ranges under 16 KiB (BatchNorm's
 * statistics) are read from the file into stdio's buffer instead: cheaper than two splices, and
 * still no page of the mapping touched.
 *
 * Where the kernel cannot (a splice refused: EINVAL, EBADF, ...) the caller writes the rest from
 * the mapping, as with PTCC_NO_KERNEL_COPY=1: the same bytes either way (tests/io). */
#define _GNU_SOURCE /* splice, F_SETPIPE_SZ */
#include "ptcc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	PIPE_BYTES = 1 << 20, /* /proc/sys/fs/pipe-max-size's default: no privilege needed */
	SPLICE_MIN = 16 << 10,
};

void
kcopy_init(OutFile *o)
{
	const char *off = getenv("PTCC_NO_KERNEL_COPY");

	o->no_copy = off && *off && strcmp(off, "0") != 0;
	o->pipe[0] = o->pipe[1] = -1;
	o->copied = 0;
}

void
kcopy_fini(OutFile *o)
{
	for (int i = 0; i < 2; i++) {
		if (o->pipe[i] >= 0)
			close(o->pipe[i]);
		o->pipe[i] = -1;
	}
}

/* Append n bytes that are in o's pipe (a splice out failed with them there) through stdio. */
static void
drain_pipe(OutFile *o, size_t n)
{
	unsigned char buf[16 << 10];

	while (n && !o->error) {
		ssize_t r = read(o->pipe[0], buf, n < sizeof buf ? n : sizeof buf);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			o->error = r < 0 ? errno : EIO;
			return;
		}
		if (fwrite(buf, 1, (size_t)r, o->fp) != (size_t)r)
			o->error = errno ? errno : EIO;
		n -= (size_t)r;
	}
}

/* [at, at + len) of file fd, read into stdio's buffer. */
static size_t
read_small(OutFile *o, int fd, uint64_t at, size_t len)
{
	unsigned char buf[SPLICE_MIN];
	ssize_t r;

	while ((r = pread(fd, buf, len, (off_t)at)) < 0 && errno == EINTR)
		;
	if (r != (ssize_t)len) /* short: the file shrank (EFAULT, as a write from a lost page) */
		o->error = r < 0 ? errno : EFAULT;
	else if (fwrite(buf, 1, len, o->fp) != len)
		o->error = errno ? errno : EIO;
	return len;
}

size_t
outfile_copy_range(OutFile *o, const void *p, size_t len)
{
	size_t done = 0;
	uint64_t at;
	int fd;

	if (o->no_copy || o->error || !mapping_source(p, len, &fd, &at))
		return 0;
	if (len < SPLICE_MIN)
		return read_small(o, fd, at, len);
	if (o->pipe[0] < 0) {
		if (pipe2(o->pipe, O_CLOEXEC) != 0) {
			o->no_copy = true;
			return 0;
		}
		/* refused: 64 KiB rounds, still right */
		fcntl(o->pipe[1], F_SETPIPE_SZ, PIPE_BYTES);
	}
	if (fflush(o->fp) != 0)
		return 0; /* its error stays for outfile_close */
	while (done < len && !o->error) {
		loff_t from = (loff_t)(at + done);
		ssize_t in = splice(fd, &from, o->pipe[1], NULL, len - done, SPLICE_F_MOVE);
		size_t left;

		if (in < 0 && errno == EINTR)
			continue;
		if (in == 0) { /* the file ends before its mapping: it shrank */
			o->error = EFAULT;
			return len;
		}
		if (in < 0) { /* the kernel will not: the caller writes the rest */
			o->no_copy = true;
			break;
		}
		for (left = (size_t)in; left;) {
			int to = fileno(o->fp);
			ssize_t out = splice(o->pipe[0], NULL, to, NULL, left, SPLICE_F_MOVE);

			if (out > 0) {
				left -= (size_t)out;
				o->copied += (uint64_t)out;
			} else if (out < 0 && errno == EINTR) {
				continue;
			} else if (out < 0 &&
				   (errno == EINVAL || errno == EBADF || errno == ENOSYS)) {
				/* an output that takes no splice: the rest through stdio */
				o->no_copy = true;
				drain_pipe(o, left);
				left = 0;
			} else { /* a write error (ENOSPC, EIO, EFBIG): outfile_close says it */
				o->error = out < 0 ? errno : EIO;
				return len;
			}
		}
		done += (size_t)in;
		if (o->no_copy)
			break;
	}
	return done;
}
