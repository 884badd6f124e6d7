/* outfile.c: output files written atomically.
 *
 * Every file ptcc writes goes to a temporary file in the same directory first and is renamed
 * over the destination only when everything was written: a failed run never leaves a partial
 * file, and never clobbers an older one.  Write errors (a full disk, a short write) are detected
 * on every path.
 *
 * Before anything is written, outputs_check refuses an output that is an input (the trace, the
 * weights file), another output, or anything but a regular file or a new name: a typo in -o
 * must not destroy the trace it was meant to compile.
 */
#include "ptcc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- what may be written --------------------------------------------------------------------- */

/* "dir/" of path ("." for a bare name); malloc'd */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) + 1 : 0;
	char *d = xmalloc(n + 2);

	memcpy(d, n ? path : ".", n ? n : 1);
	d[n ? n : 1] = 0;
	return d;
}

/* Whether two paths that name no file yet would name the same one: one name in one directory,
 * however the directory is spelled. */
static bool
same_new_file(const char *a, const char *b)
{
	const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
	char *da, *db;
	struct stat x, y;
	bool same;

	if (strcmp(sa ? sa + 1 : a, sb ? sb + 1 : b) != 0)
		return false;
	da = dir_of(a);
	db = dir_of(b);
	same = stat(da, &x) == 0 && stat(db, &y) == 0 && x.st_dev == y.st_dev &&
	       x.st_ino == y.st_ino;
	free(da);
	free(db);
	return same;
}

bool
outputs_check(Ctx *c, const char *const *what, const char *const *path, size_t n)
{
	struct stat log, weights, st[4];
	bool have_log = c->fd >= 0 && fstat(c->fd, &log) == 0, have_weights = false, ok = true,
	     exists[4];
	const char *kind;

	if (n > 4)
		ptcc_die("outputs_check: %zu outputs", n);
	if (c->g.weights) { /* not read yet: what matters is the file it names */
		char *w = weights_file(c);

		have_weights = stat(w, &weights) == 0;
		free(w);
	}
	for (size_t i = 0; i < n; i++) {
		/* the name itself: rename() would replace a link, not its target */
		exists[i] = lstat(path[i], &st[i]) == 0;
		if (!exists[i])
			continue;
		if (S_ISLNK(st[i].st_mode)) {
			io_error(c, "%s %s is a symbolic link; ptcc would replace the link itself, "
				    "not its target (name the target instead)",
				 what[i], path[i]);
			ok = false;
		} else if (S_ISDIR(st[i].st_mode)) {
			io_error(c, "%s %s is a directory", what[i], path[i]);
			ok = false;
		} else if ((kind = file_kind(st[i].st_mode))) {
			io_error(c,
				 "%s %s is not a regular file (%s); ptcc writes only regular files",
				 what[i], path[i], kind);
			ok = false;
		} else if (have_log && st[i].st_dev == log.st_dev && st[i].st_ino == log.st_ino) {
			io_error(c, "%s %s is the input trace; ptcc never writes over its input",
				 what[i], path[i]);
			ok = false;
		} else if (have_weights && st[i].st_dev == weights.st_dev &&
			   st[i].st_ino == weights.st_ino) {
			io_error(c, "%s %s is the weights file; ptcc never writes over its input",
				 what[i], path[i]);
			ok = false;
		}
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i; j++)
			if (exists[i] && exists[j]
				    ? st[i].st_dev == st[j].st_dev && st[i].st_ino == st[j].st_ino
				    : !exists[i] && !exists[j] && same_new_file(path[i], path[j])) {
				io_error(c, "%s %s and %s %s are the same file; each output needs "
					    "its own",
					 what[j], path[j], what[i], path[i]);
				ok = false;
			}
	return ok;
}

/* ---- writing --------------------------------------------------------------------------------- */

bool
outfile_open(Ctx *c, OutFile *o, const char *path)
{
	mode_t mask;
	int fd;

	memset(o, 0, sizeof *o);
	o->c = c;
	o->path = path;
	o->tmp = xmalloc(strlen(path) + 16);
	sprintf(o->tmp, "%s.tmpXXXXXX", path);
	if ((fd = mkstemp(o->tmp)) < 0) {
		io_error(c, "cannot create '%s': %s", path, strerror(errno));
		free(o->tmp);
		o->tmp = NULL;
		return false;
	}
	/* mkstemp makes the file 0600; give it the permissions a plain fopen would have */
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0666 & ~mask) != 0 || !(o->fp = fdopen(fd, "wb"))) {
		io_error(c, "cannot create '%s': %s", path, strerror(errno));
		close(fd);
		unlink(o->tmp);
		free(o->tmp);
		o->tmp = NULL;
		return false;
	}
	setvbuf(o->fp, NULL, _IOFBF, 1 << 20);
	return true;
}

bool
outfile_close(OutFile *o)
{
	bool ok = o->fp && !o->error && fflush(o->fp) == 0 && !ferror(o->fp);
	int err = o->error ? o->error : errno;

	if (o->fp && fclose(o->fp) != 0 && ok) {
		ok = false;
		err = errno;
	}
	o->fp = NULL;
	if (!ok) {
		io_error(o->c, "cannot write '%s': %s", o->path, strerror(err ? err : EIO));
		outfile_abort(o);
	}
	return ok;
}

bool
outfile_commit(OutFile *o)
{
	if (rename(o->tmp, o->path) != 0) {
		io_error(o->c, "cannot write '%s': %s", o->path, strerror(errno));
		outfile_abort(o);
		return false;
	}
	free(o->tmp);
	o->tmp = NULL;
	return true;
}

void
outfile_abort(OutFile *o)
{
	if (o->fp)
		fclose(o->fp);
	o->fp = NULL;
	if (o->tmp) {
		unlink(o->tmp);
		free(o->tmp);
		o->tmp = NULL;
	}
}
