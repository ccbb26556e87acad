/* File helpers: read, mmap, atomic write, directories. */
#include "hone/base.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

hone_status hone_file_map(hone_mapped_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return hone_errorf(HONE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return hone_errorf(HONE_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return hone_errorf(HONE_ERR_IO, "%s: not a regular file", path);
    }
    f->size = (size_t)st.st_size;
    if (f->size > 0) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return hone_errorf(HONE_ERR_IO, "%s: cannot map: %s", path, strerror(e));
        }
        f->data = p;
    }
    close(fd);
    f->path = strdup(path);
    return HONE_OK;
}

void hone_file_unmap(hone_mapped_file *f) {
    if (f->data) munmap((void *)f->data, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

hone_status hone_file_read(const char *path, char **out, size_t *out_size) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return hone_errorf(HONE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(fp);
        return hone_errorf(HONE_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(fp);
                return hone_errorf(HONE_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) break;
    }
    int failed = ferror(fp);
    fclose(fp);
    if (failed) {
        free(buf);
        return hone_errorf(HONE_ERR_IO, "%s: read error", path);
    }
    buf[n] = 0;
    *out = buf;
    if (out_size) *out_size = n;
    return HONE_OK;
}

int hone_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int hone_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

hone_status hone_dir_create(const char *path) {
    char *p = strdup(path);
    if (!p) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            hone_status st = hone_errorf(HONE_ERR_IO, "%s: cannot create directory: %s", p, strerror(errno));
            free(p);
            return st;
        }
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        hone_status st = hone_errorf(HONE_ERR_IO, "%s: cannot create directory: %s", p, strerror(errno));
        free(p);
        return st;
    }
    free(p);
    if (!hone_dir_exists(path)) return hone_errorf(HONE_ERR_IO, "%s: exists and is not a directory", path);
    return HONE_OK;
}

char *hone_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, dir, a);
    size_t n = a;
    if (a > 0 && dir[a - 1] != '/') s[n++] = '/';
    memcpy(s + n, name, b + 1);
    return s;
}

hone_status hone_atomic_open(hone_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    af->path = strdup(path);
    size_t n = strlen(path) + 32;
    af->tmp_path = malloc(n);
    if (!af->path || !af->tmp_path) {
        free(af->path);
        free(af->tmp_path);
        return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    }
    snprintf(af->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp) {
        hone_status st = hone_errorf(HONE_ERR_IO, "%s: cannot create: %s", af->tmp_path, strerror(errno));
        free(af->path);
        free(af->tmp_path);
        memset(af, 0, sizeof *af);
        return st;
    }
    return HONE_OK;
}

hone_status hone_atomic_write(hone_atomic_file *af, const void *data, size_t n) {
    if (n && fwrite(data, 1, n, af->fp) != n)
        return hone_errorf(HONE_ERR_IO, "%s: write failed: %s", af->tmp_path, strerror(errno));
    return HONE_OK;
}

static void fsync_parent_dir(const char *path) {
    char *copy = strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

hone_status hone_atomic_commit(hone_atomic_file *af) {
    hone_status st = HONE_OK;
    if (fflush(af->fp) != 0 || fsync(fileno(af->fp)) != 0)
        st = hone_errorf(HONE_ERR_IO, "%s: flush failed: %s", af->tmp_path, strerror(errno));
    if (fclose(af->fp) != 0 && st == HONE_OK)
        st = hone_errorf(HONE_ERR_IO, "%s: close failed: %s", af->tmp_path, strerror(errno));
    af->fp = NULL;
    if (st == HONE_OK && rename(af->tmp_path, af->path) != 0)
        st = hone_errorf(HONE_ERR_IO, "%s: cannot rename into place: %s", af->path, strerror(errno));
    if (st != HONE_OK) unlink(af->tmp_path);
    else fsync_parent_dir(af->path);
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
    return st;
}

void hone_atomic_abort(hone_atomic_file *af) {
    if (af->fp) fclose(af->fp);
    if (af->tmp_path) unlink(af->tmp_path);
    free(af->path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
}

hone_status hone_file_write_atomic(const char *path, const void *data, size_t n) {
    hone_atomic_file af;
    HONE_TRY(hone_atomic_open(&af, path));
    hone_status st = hone_atomic_write(&af, data, n);
    if (st != HONE_OK) {
        hone_atomic_abort(&af);
        return st;
    }
    return hone_atomic_commit(&af);
}

/* fsync of a file or folder by path (folders: their entries are durable once this returns). */
static hone_status fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return hone_errorf(HONE_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int failed = fsync(fd) != 0 && errno != EINVAL; /* some filesystems cannot fsync folders */
    int e = errno;
    close(fd);
    return failed ? hone_errorf(HONE_ERR_IO, "%s: fsync failed: %s", path, strerror(e)) : HONE_OK;
}

hone_status hone_dir_remove(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? HONE_OK : hone_errorf(HONE_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return hone_errorf(HONE_ERR_IO, "%s: cannot open folder: %s", path, strerror(errno));
        hone_status rc = HONE_OK;
        for (struct dirent *e; rc == HONE_OK && (e = readdir(d));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *child = hone_path_join(path, e->d_name);
            rc = child ? hone_dir_remove(child) : hone_errorf(HONE_ERR_NOMEM, "out of memory");
            free(child);
        }
        closedir(d);
        HONE_TRY(rc);
        if (rmdir(path) != 0) return hone_errorf(HONE_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
        return HONE_OK;
    }
    if (unlink(path) != 0) return hone_errorf(HONE_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    return HONE_OK;
}

hone_status hone_dir_commit(const char *tmp_dir, const char *final_dir) {
    /* the files were written through hone_atomic_* (each fsynced); the folder's entries need their own fsync */
    HONE_TRY(fsync_path(tmp_dir));
    size_t n = strlen(final_dir) + 32;
    char *aside = malloc(n);
    if (!aside) return hone_errorf(HONE_ERR_NOMEM, "out of memory");
    snprintf(aside, n, "%s.old.%ld", final_dir, (long)getpid());
    int had_old = hone_dir_exists(final_dir);
    hone_status st = HONE_OK;
    if (had_old && rename(final_dir, aside) != 0)
        st = hone_errorf(HONE_ERR_IO, "%s: cannot move the old folder aside: %s", final_dir, strerror(errno));
    if (st == HONE_OK && rename(tmp_dir, final_dir) != 0)
        st = hone_errorf(HONE_ERR_IO, "%s: cannot rename into place: %s", final_dir, strerror(errno));
    if (st == HONE_OK) fsync_parent_dir(final_dir);
    if (st == HONE_OK && had_old) st = hone_dir_remove(aside);
    free(aside);
    return st;
}

double hone_peak_memory_mb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}
