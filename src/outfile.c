/* outfile.c: output files written atomically, and what may not be written.
 *
 * Every file ptcc writes goes to a temporary file in the same directory first and is renamed
 * over the destination only when everything was written: a failed run never leaves a partial
 * file, and never clobbers an older one.  Write errors (a full disk, a short write) are detected
 * on every path.  A signal that can be caught (SIGINT, SIGTERM, ...) removes the temporary files
 * before it ends ptcc as it would have; only a SIGKILL leaves a NAME.tmpXXXXXX behind, never a
 * partial file under the final name.
 *
 * Before anything is written, outputs_check refuses an output that is an input (the trace, the
 * weights file), another output, or anything but a regular file or a new name: a typo in -o
 * must not destroy the trace it was meant to compile.
 *
 * The weights file is mapped (weights.c); a file that shrinks under the mapping faults with
 * SIGBUS on the next read of a page it lost.  guard_mapping turns that fault into an error that
 * names the file (exit status 2) and removes the temporary files: the mapping's readers
 * (lowering, codegen's blob data) need no checks of their own, and cost nothing more.
 */
#include "onnx.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- temporary files and signals ------------------------------------------------------------- */

/* The temporary files being written, for the handlers.  Entries change only with the signals
 * blocked, so a handler never sees a name being added or freed. */
enum { MAX_PENDING = 8 };
static char *volatile pending[MAX_PENDING];
/* The mappings guarded against SIGBUS (the weights file, or an ONNX model and its external data
 * files), each with the line that then ends ptcc (made beforehand: a handler may not format or
 * allocate).  A slot changes only with the mapping's pages untouched. */
enum { MAX_GUARDED = 16 };
static struct {
	const char *volatile p;
	volatile size_t size;
	char *volatile msg;
	const char *file;
	int fd; /* the file, open for reading: the weights pass reads it (copypass.c) */
} guarded[MAX_GUARDED];
#define SHRANK "the weights file shrank while ptcc was reading it (it had %zu bytes)"
/* The signals whose default action ends the process, that ptcc may get while writing: from the
 * terminal, kill and timeout, a reader gone, the CPU and file size limits (ulimit -t, -f). */
static const int fatal_signals[] = {SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGXCPU, SIGXFSZ};
enum { NFATAL = sizeof fatal_signals / sizeof *fatal_signals };

static void
remove_pending(void)
{
	for (int i = 0; i < MAX_PENDING; i++)
		if (pending[i])
			unlink(pending[i]); /* async-signal-safe */
}

static void
on_fatal(int sig)
{
	struct sigaction dfl;

	remove_pending();
	/* the default action back, by hand rather than SA_RESETHAND: with the weights pass's
	 * threads, a second thread's signal (each writing past ulimit -f gets its own SIGXFSZ)
	 * would otherwise take the default action at once, ending ptcc before this handler has
	 * removed the files.  Each thread's handler removes them all; whichever raises first
	 * ends ptcc, with the status the signal gives, when its handler returns (the signal is
	 * blocked while the handler runs). */
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	raise(sig);
}

static void
on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	const char *a = si->si_addr;

	(void)uctx;
	remove_pending();
	for (int i = 0; si->si_code > 0 && i < MAX_GUARDED; i++)
		if (guarded[i].p && a >= guarded[i].p &&
		    a - guarded[i].p < (ptrdiff_t)guarded[i].size) {
			ssize_t r = write(STDERR_FILENO, guarded[i].msg, strlen(guarded[i].msg));

			(void)r;
			_exit(2);
		}
	/* not the mapping's: the default action, either raised here (kill -BUS) or when the
	 * faulting access runs again after the return */
	if (si->si_code <= 0)
		raise(sig);
}

static void
block_signals(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	for (int i = 0; i < NFATAL; i++)
		sigaddset(&set, fatal_signals[i]);
	sigprocmask(SIG_BLOCK, &set, old);
}

static void
install_handlers(void)
{
	static bool installed;
	struct sigaction sa, old;

	if (installed)
		return;
	installed = true;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < NFATAL; i++)
		sigaddset(&sa.sa_mask, fatal_signals[i]);
	sa.sa_flags = 0;
	sa.sa_handler = on_fatal;
	for (int i = 0; i < NFATAL; i++) /* a signal the caller ignores (nohup) stays ignored */
		if (sigaction(fatal_signals[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
			sigaction(fatal_signals[i], &sa, NULL);
	sa.sa_flags = SA_RESETHAND | SA_SIGINFO;
	sa.sa_sigaction = on_sigbus;
	sigaction(SIGBUS, &sa, NULL);
}

void
guard_mapping(const void *p, size_t size, const char *file, int fd)
{
	const char *fmt = "%s: error: " SHRANK "\n";
	int n = snprintf(NULL, 0, fmt, file, size);
	char *msg = xmalloc((size_t)n + 1);

	snprintf(msg, (size_t)n + 1, fmt, file, size);
	install_handlers();
	unguard_mapping(p);
	for (int i = 0; i < MAX_GUARDED; i++)
		if (!guarded[i].p) {
			guarded[i].msg = msg;
			guarded[i].size = size;
			guarded[i].file = file;
			/* -1 if it cannot be kept open: then the mapping is read as memory */
			guarded[i].fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
			guarded[i].p = p;
			return;
		}
	free(msg); /* past MAX_GUARDED mappings: a shrinking file is a SIGBUS */
}

void
unguard_mapping(const void *p)
{
	for (int i = 0; p && i < MAX_GUARDED; i++)
		if (guarded[i].p == p) {
			char *msg = guarded[i].msg;

			guarded[i].p = NULL;
			guarded[i].size = 0;
			guarded[i].msg = NULL;
			free(msg);
			if (guarded[i].fd >= 0)
				close(guarded[i].fd);
			guarded[i].fd = -1;
		}
}

bool
mapping_source(const void *p, size_t len, int *fd, uint64_t *offset)
{
	const char *a = p;

	for (int i = 0; i < MAX_GUARDED; i++)
		if (guarded[i].p && guarded[i].fd >= 0 && a >= guarded[i].p &&
		    (size_t)(a - guarded[i].p) <= guarded[i].size &&
		    len <= guarded[i].size - (size_t)(a - guarded[i].p)) {
			*fd = guarded[i].fd;
			*offset = (uint64_t)(a - guarded[i].p);
			return true;
		}
	return false;
}

/* The guarded mapping whose file is now shorter than its mapping (the first guarded one if none
 * is), or -1 when none is guarded: a write() from a mapping that failed with EFAULT met a page
 * its file lost. */
static int
shrunk_guard(void)
{
	int first = -1;
	struct stat st;

	for (int i = 0; i < MAX_GUARDED; i++) {
		if (!guarded[i].p)
			continue;
		if (first < 0)
			first = i;
		if (stat(guarded[i].file, &st) == 0 && (size_t)st.st_size < guarded[i].size)
			return i;
	}
	return first;
}

bool
report_shrunk_input(Ctx *c)
{
	int g = shrunk_guard();

	if (g < 0)
		return false;
	if (!c->shrink_reported)
		diag_file(c, DIAG_ERROR, guarded[g].file, SHRANK, (size_t)guarded[g].size);
	c->shrink_reported = true;
	return true;
}

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

/* Whether st is one of the ONNX model's external data files. */
static bool
is_external(const Ctx *c, const struct stat *st)
{
	for (size_t i = 0; c->onnx && i < c->onnx->externals.n; i++)
		if ((uint64_t)st->st_dev == c->onnx->externals.v[i].dev &&
		    (uint64_t)st->st_ino == c->onnx->externals.v[i].ino)
			return true;
	return false;
}

bool
outputs_check(Ctx *c, const char *const *what, const char *const *path, size_t n)
{
	struct stat log, weights, st[4];
	/* the input: the trace (open), or the ONNX model (mapped) */
	bool have_log = c->fd >= 0 ? fstat(c->fd, &log) == 0 : c->onnx && stat(c->path, &log) == 0,
	     have_weights = false, ok = true, exists[4];
	const char *kind;

	if (n > 4)
		ptcc_die("outputs_check: %zu outputs", n);
	if (c->g.weights && !c->onnx) { /* not read yet: what matters is the file it names */
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
			io_error(c, "%s %s is the input %s; ptcc never writes over its input",
				 what[i], path[i], c->onnx ? "model" : "trace");
			ok = false;
		} else if (is_external(c, &st[i])) {
			io_error(c, "%s %s is an external data file of the model; ptcc never "
				 "writes over its input", what[i], path[i]);
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

enum { OUT_BUFFER = 256 << 10 }; /* stdio's buffer for each output */

bool
outfile_open(Ctx *c, OutFile *o, const char *path)
{
	sigset_t old;
	mode_t mask;
	int fd, err;

	memset(o, 0, sizeof *o);
	copypass_init(o);
	o->c = c;
	o->path = path;
	o->tmp = xmalloc(strlen(path) + 16);
	sprintf(o->tmp, "%s.tmpXXXXXX", path);
	install_handlers();
	/* made and registered with the signals held: a signal in between would leave it behind */
	block_signals(&old);
	fd = mkstemp(o->tmp);
	err = errno;
	if (fd >= 0) {
		int i;

		for (i = 0; i < MAX_PENDING && pending[i]; i++)
			;
		if (i == MAX_PENDING)
			ptcc_die("more than %d output files at once", MAX_PENDING);
		pending[i] = o->tmp;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (fd < 0) {
		io_error(c, "cannot create '%s': %s", path, strerror(err));
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
		outfile_abort(o);
		return false;
	}
	/* a buffer of ptcc's own: given none, glibc ignores the size and takes the file system's
	 * block (4 KiB), a write() for every 4 KiB of the prototxt */
	o->buf = xmalloc(OUT_BUFFER);
	setvbuf(o->fp, o->buf, _IOFBF, OUT_BUFFER);
	return true;
}

/* Forget o's temporary file (signals held by the caller). */
static void
unregister(OutFile *o)
{
	for (int i = 0; i < MAX_PENDING; i++)
		if (pending[i] == o->tmp)
			pending[i] = NULL;
	free(o->tmp);
	o->tmp = NULL;
}

bool
outfile_close(OutFile *o)
{
	copypass_finish(o, o->error != 0); /* the weights in their places, or stopped */
	bool ok = o->fp && !o->error && fflush(o->fp) == 0 && !ferror(o->fp);
	int err = o->error ? o->error : errno;

	if (o->fp && fclose(o->fp) != 0 && ok) {
		ok = false;
		err = errno;
	}
	o->fp = NULL;
	free(o->buf);
	o->buf = NULL;
	if (!ok) {
		/* an input that shrank: the weights pass's read came short, or a write() from
		 * a page of the mapping that its file lost failed with EFAULT, not a SIGBUS
		 * (ptcc's own memory never faults) */
		if (!(err == EFAULT && report_shrunk_input(o->c)))
			io_error(o->c, "cannot write '%s': %s", o->path,
				 strerror(err ? err : EIO));
		outfile_abort(o);
	}
	return ok;
}

bool
outfile_commit(OutFile *o)
{
	sigset_t old;
	int err;

	block_signals(&old); /* renamed and forgotten at once: no handler unlinks the old name */
	if (rename(o->tmp, o->path) != 0) {
		err = errno;
		sigprocmask(SIG_SETMASK, &old, NULL);
		io_error(o->c, "cannot write '%s': %s", o->path, strerror(err));
		outfile_abort(o);
		return false;
	}
	unregister(o);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return true;
}

void
outfile_abort(OutFile *o)
{
	sigset_t old;

	copypass_finish(o, true);
	if (o->fp)
		fclose(o->fp);
	o->fp = NULL;
	free(o->buf);
	o->buf = NULL;
	if (o->tmp) {
		block_signals(&old);
		unlink(o->tmp);
		unregister(o);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
}
