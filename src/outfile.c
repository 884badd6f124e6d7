/* outfile.c: output files written atomically.
 *
 * Every file ptcc writes goes to a temporary file in the same directory first and is renamed
 * over the destination only when everything was written: a failed run never leaves a partial
 * file, and never clobbers an older one.  Write errors (a full disk, a short write) are detected
 * on every path.
 */
#include "ptcc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
