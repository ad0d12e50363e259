/*
 * failio.c - an LD_PRELOAD library that makes one read or write system call
 * of a program fail, for tests/e2e/t_faults_io.sh (adversarial.md T45).
 *
 *   PPCP_FAILIO=OP:N:ERRNO:KIND[:sticky]
 *
 * OP is "read" (read, readv, pread, preadv, recv, recvfrom, recvmsg),
 * "write" (write, writev, pwrite, pwritev, send, sendto, sendmsg), "sync"
 * (fsync, fdatasync), "open" (open, openat and their 64 forms, not the raw
 * openat2 system call), "rename" (rename, renameat, renameat2), "accept"
 * (accept, accept4), "socket", "connect", "close", "openat2" (the raw
 * system call, made through syscall(3)), "socketpair", "pipe2" or "fork"
 * (what libuv's uv_spawn calls).  A failed close still
 * releases the descriptor, as Linux's does.  KIND is "sock" (sockets),
 * "file" (regular files) or "any"; it applies to read, write, sync and
 * close, the others count every call.  The N-th call (from 1)
 * of OP on a descriptor of KIND fails with ERRNO (a number, or one of EIO,
 * ENOSPC, ECONNRESET, EPIPE, EINTR, EAGAIN, ENOMEM); with "sticky", every
 * later one fails too, like a disk that stays full.  Calls are counted over
 * the whole process (all threads).
 *
 * PPCP_FAILIO_PROG names the program to break (the last part of its
 * path, e.g. "ppcpd"); in any other program (timeout, strace, a shell) the
 * library does nothing and leaves the environment alone.  In the program it
 * breaks, it removes its variables and LD_PRELOAD from the environment at
 * load, so that what that program starts (commands run by ppcpd) runs
 * unharmed.
 *
 * Faults fire only in the process that loaded the library, never in a
 * child it forks (between fork and exec, libuv's child code would see the
 * parent's count).
 *
 * When the fault first fires, the library appends "fired OP N fd FD" to the
 * file named by PPCP_FAILIO_LOG, so a test knows the call was reached and
 * can stop raising N once it is not.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { K_ANY, K_SOCK, K_FILE };

enum {
	OP_READ,
	OP_WRITE,
	OP_SYNC,
	OP_OPEN,
	OP_RENAME,
	OP_ACCEPT,
	OP_SOCKET,
	OP_CONNECT,
	OP_CLOSE,
	OP_OPENAT2,
	OP_SOCKETPAIR,
	OP_PIPE2,
	OP_FORK,
};
static const char *const fi_names[] = {"read",	 "write",  "sync",    "open",  "rename",
				       "accept", "socket", "connect", "close", "openat2",
				       "socketpair", "pipe2", "fork"};
static int fi_op = -1; /* an OP_*, -1 off */
static unsigned long fi_n, fi_count;
static int fi_errno = EIO, fi_kind = K_ANY, fi_sticky, fi_fired;
static char fi_log[512];
static pid_t fi_pid; /* faults fire in this process only, not in its forks */

static int fi_errno_of(const char *s)
{
	static const struct {
		const char *name;
		int e;
	} names[] = {{"EIO", EIO},	   {"ENOSPC", ENOSPC}, {"ECONNRESET", ECONNRESET},
		     {"EPIPE", EPIPE},	   {"EINTR", EINTR},   {"EAGAIN", EAGAIN},
		     {"ENOMEM", ENOMEM}, {"EDQUOT", EDQUOT},
		     {"EMFILE", EMFILE}, {"EACCES", EACCES},
		     {"ENFILE", ENFILE}, {"ECONNREFUSED", ECONNREFUSED},
		     {"ENETUNREACH", ENETUNREACH}, {"ETIMEDOUT", ETIMEDOUT}};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].e;
	return atoi(s) > 0 ? atoi(s) : EIO;
}

__attribute__((constructor)) static void fi_init(void)
{
	const char *spec = getenv("PPCP_FAILIO");
	const char *log = getenv("PPCP_FAILIO_LOG");
	const char *prog = getenv("PPCP_FAILIO_PROG");
	char buf[128], exe[512], *save = NULL, *tok;
	int field = 0;
	ssize_t n;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (prog == NULL || n <= 0)
		return;
	exe[n] = '\0';
	tok = strrchr(exe, '/');
	if (strcmp(tok != NULL ? tok + 1 : exe, prog) != 0)
		return;

	fi_pid = getpid();
	if (log != NULL)
		snprintf(fi_log, sizeof(fi_log), "%s", log);
	if (spec != NULL) {
		snprintf(buf, sizeof(buf), "%s", spec);
		for (tok = strtok_r(buf, ":", &save); tok != NULL; tok = strtok_r(NULL, ":", &save)) {
			switch (field++) {
			case 0:
				fi_op = -1;
				for (int i = 0; i < (int)(sizeof(fi_names) / sizeof(fi_names[0])); i++)
					if (strcmp(tok, fi_names[i]) == 0)
						fi_op = i;
				break;
			case 1: fi_n = strtoul(tok, NULL, 10); break;
			case 2: fi_errno = fi_errno_of(tok); break;
			case 3: fi_kind = strcmp(tok, "sock") == 0 ? K_SOCK : strcmp(tok, "file") == 0 ? K_FILE : K_ANY; break;
			case 4: fi_sticky = strcmp(tok, "sticky") == 0; break;
			}
		}
		if (fi_n == 0)
			fi_op = -1;
	}
	unsetenv("PPCP_FAILIO");
	unsetenv("PPCP_FAILIO_LOG");
	unsetenv("PPCP_FAILIO_PROG");
	unsetenv("LD_PRELOAD");
}

static int fi_kind_matches(int fd)
{
	struct stat st;

	if (fi_kind == K_ANY || fd < 0)
		return 1;
	if (fstat(fd, &st) != 0)
		return 0;
	return fi_kind == K_SOCK ? S_ISSOCK(st.st_mode) : S_ISREG(st.st_mode);
}

static void fi_note(int op, int fd)
{
	char line[96];
	int n, lfd;

	if (fi_log[0] == '\0')
		return;
	n = snprintf(line, sizeof(line), "fired %s %lu fd %d pid %d\n", fi_names[op], fi_n, fd,
		     (int)getpid());
	lfd = (int)syscall(SYS_openat, AT_FDCWD, fi_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (lfd >= 0) {
		(void)syscall(SYS_write, lfd, line, (size_t)n);
		(void)syscall(SYS_close, lfd);
	}
}

/* 1 when this call must fail (errno is then set).  No lock: these run in
 * signal handlers and in forked children too, so only atomics. */
static int fi_should_fail(int op, int fd)
{
	unsigned long k;

	if (op != fi_op || !fi_kind_matches(fd) || getpid() != fi_pid)
		return 0;
	k = __atomic_add_fetch(&fi_count, 1, __ATOMIC_SEQ_CST);
	if (k != fi_n && !(fi_sticky && k > fi_n))
		return 0;
	if (__atomic_exchange_n(&fi_fired, 1, __ATOMIC_SEQ_CST) == 0)
		fi_note(op, fd);
	errno = fi_errno;
	return 1;
}

/* The next definition of a function, looked up once (dlsym allocates on
 * its first use; later uses of the cached pointer do not). */
#define REAL(name)                                                                                 \
	({                                                                                         \
		static __typeof__(&name) real_;                                                    \
		__typeof__(&name) r_ = __atomic_load_n(&real_, __ATOMIC_ACQUIRE);                  \
		if (r_ == NULL) {                                                                  \
			r_ = (__typeof__(&name))dlsym(RTLD_NEXT, #name);                           \
			__atomic_store_n(&real_, r_, __ATOMIC_RELEASE);                            \
		}                                                                                  \
		r_;                                                                                \
	})

ssize_t read(int fd, void *b, size_t n)
{
	return fi_should_fail(OP_READ, fd) ? -1 : REAL(read)(fd, b, n);
}
ssize_t readv(int fd, const struct iovec *v, int c)
{
	return fi_should_fail(OP_READ, fd) ? -1 : REAL(readv)(fd, v, c);
}
ssize_t pread64(int fd, void *b, size_t n, off64_t o)
{
	return fi_should_fail(OP_READ, fd) ? -1 : REAL(pread64)(fd, b, n, o);
}
ssize_t pread(int fd, void *b, size_t n, off_t o)
{
	return fi_should_fail(OP_READ, fd) ? -1 : REAL(pread)(fd, b, n, o);
}
ssize_t preadv(int fd, const struct iovec *v, int c, off_t o)
{
	return fi_should_fail(OP_READ, fd) ? -1 : REAL(preadv)(fd, v, c, o);
}
ssize_t preadv64(int fd, const struct iovec *v, int c, off64_t o)
{
	return fi_should_fail(OP_READ, fd) ? -1 : REAL(preadv64)(fd, v, c, o);
}
ssize_t recv(int fd, void *b, size_t n, int f)
{
	return fi_should_fail(OP_READ, fd) ? -1 : REAL(recv)(fd, b, n, f);
}
ssize_t recvfrom(int fd, void *b, size_t n, int f, struct sockaddr *a, socklen_t *al)
{
	return fi_should_fail(OP_READ, fd) ? -1 : REAL(recvfrom)(fd, b, n, f, a, al);
}
ssize_t recvmsg(int fd, struct msghdr *m, int f)
{
	return fi_should_fail(OP_READ, fd) ? -1 : REAL(recvmsg)(fd, m, f);
}
ssize_t write(int fd, const void *b, size_t n)
{
	return fi_should_fail(OP_WRITE, fd) ? -1 : REAL(write)(fd, b, n);
}
ssize_t writev(int fd, const struct iovec *v, int c)
{
	return fi_should_fail(OP_WRITE, fd) ? -1 : REAL(writev)(fd, v, c);
}
ssize_t pwrite64(int fd, const void *b, size_t n, off64_t o)
{
	return fi_should_fail(OP_WRITE, fd) ? -1 : REAL(pwrite64)(fd, b, n, o);
}
ssize_t pwrite(int fd, const void *b, size_t n, off_t o)
{
	return fi_should_fail(OP_WRITE, fd) ? -1 : REAL(pwrite)(fd, b, n, o);
}
ssize_t pwritev(int fd, const struct iovec *v, int c, off_t o)
{
	return fi_should_fail(OP_WRITE, fd) ? -1 : REAL(pwritev)(fd, v, c, o);
}
ssize_t pwritev64(int fd, const struct iovec *v, int c, off64_t o)
{
	return fi_should_fail(OP_WRITE, fd) ? -1 : REAL(pwritev64)(fd, v, c, o);
}
ssize_t send(int fd, const void *b, size_t n, int f)
{
	return fi_should_fail(OP_WRITE, fd) ? -1 : REAL(send)(fd, b, n, f);
}
ssize_t sendto(int fd, const void *b, size_t n, int f, const struct sockaddr *a, socklen_t al)
{
	return fi_should_fail(OP_WRITE, fd) ? -1 : REAL(sendto)(fd, b, n, f, a, al);
}
ssize_t sendmsg(int fd, const struct msghdr *m, int f)
{
	return fi_should_fail(OP_WRITE, fd) ? -1 : REAL(sendmsg)(fd, m, f);
}

int fsync(int fd)
{
	return fi_should_fail(OP_SYNC, fd) ? -1 : REAL(fsync)(fd);
}
int fdatasync(int fd)
{
	return fi_should_fail(OP_SYNC, fd) ? -1 : REAL(fdatasync)(fd);
}
int rename(const char *a, const char *b)
{
	return fi_should_fail(OP_RENAME, -1) ? -1 : REAL(rename)(a, b);
}
int renameat(int da, const char *a, int db, const char *b)
{
	return fi_should_fail(OP_RENAME, -1) ? -1 : REAL(renameat)(da, a, db, b);
}
int renameat2(int da, const char *a, int db, const char *b, unsigned int f)
{
	return fi_should_fail(OP_RENAME, -1) ? -1 : REAL(renameat2)(da, a, db, b, f);
}
int accept(int fd, struct sockaddr *a, socklen_t *l)
{
	return fi_should_fail(OP_ACCEPT, fd) ? -1 : REAL(accept)(fd, a, l);
}
int accept4(int fd, struct sockaddr *a, socklen_t *l, int f)
{
	return fi_should_fail(OP_ACCEPT, fd) ? -1 : REAL(accept4)(fd, a, l, f);
}

int socket(int domain, int type, int proto)
{
	return fi_should_fail(OP_SOCKET, -1) ? -1 : REAL(socket)(domain, type, proto);
}
int connect(int fd, const struct sockaddr *a, socklen_t l)
{
	return fi_should_fail(OP_CONNECT, fd) ? -1 : REAL(connect)(fd, a, l);
}
int close(int fd)
{
	if (fi_should_fail(OP_CLOSE, fd)) {
		int e = errno;

		(void)REAL(close)(fd); /* the descriptor is gone all the same */
		errno = e;
		return -1;
	}
	return REAL(close)(fd);
}

int socketpair(int domain, int type, int proto, int sv[2])
{
	return fi_should_fail(OP_SOCKETPAIR, -1) ? -1 : REAL(socketpair)(domain, type, proto, sv);
}
int pipe2(int fds[2], int flags)
{
	return fi_should_fail(OP_PIPE2, -1) ? -1 : REAL(pipe2)(fds, flags);
}
pid_t fork(void)
{
	return fi_should_fail(OP_FORK, -1) ? -1 : REAL(fork)();
}

/* syscall(3) passes its arguments in registers; reading six is what
 * glibc's own wrapper does. */
long syscall(long nr, ...)
{
	long a[6];
	va_list ap;

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
#ifdef SYS_openat2
	if (nr == SYS_openat2 && fi_should_fail(OP_OPENAT2, -1))
		return -1;
#endif
	return REAL(syscall)(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* open and openat take a mode only with O_CREAT or O_TMPFILE. */
#define FI_MODE(flags, mode)                                                                       \
	do {                                                                                       \
		if (((flags) & O_CREAT) || ((flags) & O_TMPFILE) == O_TMPFILE) {                  \
			va_list ap;                                                                \
			va_start(ap, flags);                                                       \
			mode = va_arg(ap, mode_t);                                                 \
			va_end(ap);                                                                \
		}                                                                                  \
	} while (0)

int open(const char *p, int flags, ...)
{
	mode_t mode = 0;
	FI_MODE(flags, mode);
	return fi_should_fail(OP_OPEN, -1) ? -1 : REAL(open)(p, flags, mode);
}
int open64(const char *p, int flags, ...)
{
	mode_t mode = 0;
	FI_MODE(flags, mode);
	return fi_should_fail(OP_OPEN, -1) ? -1 : REAL(open64)(p, flags, mode);
}
int openat(int d, const char *p, int flags, ...)
{
	mode_t mode = 0;
	FI_MODE(flags, mode);
	return fi_should_fail(OP_OPEN, -1) ? -1 : REAL(openat)(d, p, flags, mode);
}
int openat64(int d, const char *p, int flags, ...)
{
	mode_t mode = 0;
	FI_MODE(flags, mode);
	return fi_should_fail(OP_OPEN, -1) ? -1 : REAL(openat64)(d, p, flags, mode);
}
