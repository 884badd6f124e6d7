/* tests/fuzz/fuzz.c: the targets' shared harness code (fuzz.h). */
#include "fuzz.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[4096];

static void
remove_dir(void)
{
	char cmd[4200];

	/* the directory is ours and its name has no quote: made by mkdtemp below */
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz: cannot remove %s\n", dir);
}

const char *
fuzz_dir(void)
{
	if (!dir[0]) {
		const char *tmp = getenv("TMPDIR");

		snprintf(dir, sizeof dir, "%s/ptcc-fuzz.XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(dir) || strchr(dir, '\'')) {
			perror("fuzz: mkdtemp");
			abort();
		}
		atexit(remove_dir);
	}
	return dir;
}

const char *
fuzz_path(int slot, const char *name)
{
	static char buf[4][4200];

	snprintf(buf[slot], sizeof buf[slot], "%s/%s", fuzz_dir(), name);
	return buf[slot];
}

void
fuzz_write(const char *path, const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	size_t done = 0;

	if (fd < 0) {
		perror(path);
		abort();
	}
	while (done < size) {
		ssize_t k = write(fd, data + done, size - done);

		if (k <= 0) {
			perror(path);
			abort();
		}
		done += (size_t)k;
	}
	close(fd);
}

FILE *
fuzz_null(void)
{
	static FILE *f;

	if (!f && !(f = fopen("/dev/null", "w"))) {
		perror("/dev/null");
		abort();
	}
	return f;
}

void
fuzz_link_dir(const char *from)
{
	DIR *d = opendir(from);
	struct dirent *e;
	char src[4200];

	if (!d) {
		perror(from);
		abort();
	}
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(src, sizeof src, "%s/%s", from, e->d_name);
			if (symlink(src, fuzz_path(0, e->d_name)) != 0) {
				perror(src);
				abort();
			}
		}
	closedir(d);
}
