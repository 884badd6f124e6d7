/* ctx.c: a compilation's context: made, opened on a trace file, freed. */
#include "onnx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
ctx_init(Ctx *c)
{
	memset(c, 0, sizeof *c);
	c->strings.arena = &c->arena;
	c->shapes.arena = &c->arena;
	c->lists.arena = &c->arena;
	c->fd = -1;
	c->max_errors = 20;
	c->last_syntax_line = 0;
}

const char *
file_kind(unsigned mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return NULL;
	case S_IFDIR: return "a directory";
	case S_IFIFO: return "a FIFO";
	case S_IFCHR: return "a character device";
	case S_IFBLK: return "a block device";
	case S_IFSOCK: return "a socket";
	case S_IFLNK: return "a symbolic link";
	default: return "not a file";
	}
}

int
input_open(const char *path, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC), flags, err;

	if (fd < 0)
		return -1;
	if (fstat(fd, st) != 0)
		goto fail;
	/* O_NONBLOCK was for the open only: a regular file's reads then block as usual */
	if (S_ISREG(st->st_mode) &&
	    ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0))
		goto fail;
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

int
input_open_regular(Ctx *c, const char *path, struct stat *st)
{
	const char *kind;
	int fd;

	if ((fd = input_open(path, st)) < 0) {
		io_error(c, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	/* A FIFO, a device (/dev/zero never ends) or a socket would be read without end; a
	 * directory fails on the first read.  Diagnostics read the trace's lines again, and a
	 * model is mapped, which only a regular file allows. */
	if ((kind = file_kind(st->st_mode))) {
		if (S_ISDIR(st->st_mode))
			io_error(c, "'%s' is a directory", path);
		else
			io_error(c, "'%s' is not a regular file (%s)", path, kind);
		close(fd);
		return -1;
	}
	return fd;
}

bool
ctx_open(Ctx *c, const char *path)
{
	struct stat st;
	int fd;

	c->path = path;
	if ((fd = input_open_regular(c, path, &st)) < 0)
		return false;
	if ((uint64_t)st.st_size > TRACE_MAX_BYTES) {
		io_error(c, "'%s' is larger than 4 GiB (%llu bytes), the most a trace may hold",
			 path, (unsigned long long)st.st_size);
		close(fd);
		return false;
	}
	if (!(c->fp = fdopen(fd, "rb"))) {
		io_error(c, "cannot open '%s': %s", path, strerror(errno));
		close(fd);
		return false;
	}
	c->fd = fd;
	return true;
}

size_t
ctx_read(Ctx *c, char *buf, size_t max)
{
	size_t want, got;

	/* --max-errors spent: whatever follows would not be reported, so it is not read */
	if (c->stopped || c->read_error || !c->fp)
		return 0;
	/* one byte past the limit tells a file that grew since ctx_open checked its size */
	want = max;
	if (c->nread + max > TRACE_MAX_BYTES + 1)
		want = (size_t)(TRACE_MAX_BYTES + 1 - c->nread);
	if (want == 0) {
		c->lex.overflow = true;
		return 0;
	}
	got = fread(buf, 1, want, c->fp);
	if (got < want && ferror(c->fp)) {
		/* flex would only say "input in flex scanner failed" */
		io_error(c, "cannot read '%s': %s", c->path, strerror(errno));
		c->read_error = true;
		return 0;
	}
	c->nread += got;
	if (c->nread > TRACE_MAX_BYTES) {
		c->lex.overflow = true;
		got -= (size_t)(c->nread - TRACE_MAX_BYTES);
	}
	return got;
}

void
ctx_free(Ctx *c)
{
	if (c->fp)
		fclose(c->fp); /* and c->fd, its descriptor */
	else if (c->fd >= 0)
		close(c->fd);
	value_check_free(c); /* unreported (an error ended the run first) */
	weights_free(c->weights);
	onnx_free(c->onnx);
	resolve_free(c);
	free(c->parse.args.v);
	free(c->parse.lits.v);
	free(c->parse.results.v);
	free(c->parse.types.v);
	free(c->parse.dims.v);
	free(c->tmpdims.v);
	free(c->parse.strbuf);
	free(c->g.params.v);
	free(c->g.inputs.v);
	free(c->g.outputs.v);
	free(c->g.events.v);
	map_free(&c->params_by_name);
	intern_free(&c->strings);
	word_intern_free(&c->shapes);
	word_intern_free(&c->lists);
	arena_free(&c->arena);
}
